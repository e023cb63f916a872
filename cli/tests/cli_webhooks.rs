//! `offramp webhooks register` against the sandbox's ConnectWise: one callback after two
//! runs, counted by the simulator, with the token in its URL.

use crate::common;

use offramp_sandbox::{Sandbox, SandboxConfig};

const TOKEN: &str = "cw-url-token-for-the-cli-test";

#[tokio::test]
async fn registering_twice_leaves_one_connectwise_callback() {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let url = "https://hooks.example.com/webhooks/connectwise";
    for created in [true, false] {
        let mut command = common::offramp_for(&sandbox, "connectwise", &db);
        command.env("CONNECTWISE_WEBHOOK_URL_TOKEN", TOKEN);
        command.args(["webhooks", "register", "--psa", "connectwise", "--url", url, "--json"]);
        let out = common::run(command).await;
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(common::json(&out)["created"], created);
    }
    let callbacks = sandbox.connectwise().callbacks();
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    assert_eq!(callbacks[0]["url"], format!("{url}/{TOKEN}"));
    assert_eq!((callbacks[0]["type"].as_str(), callbacks[0]["level"].as_str()), (Some("company"), Some("owner")));
    assert_eq!(sandbox.stats().count("POST", "/system/callbacks"), 1);

    // Without the token there is nothing to register: a configuration error (exit 3).
    let mut command = common::offramp_for(&sandbox, "connectwise", &db);
    command.args(["webhooks", "register", "--psa", "connectwise", "--url", url]);
    let out = common::run(command).await;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sandbox.connectwise().callbacks().len(), 1);
}
