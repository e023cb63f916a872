//! One module per command: its flags, how it runs, how it prints. Commands that change
//! data go through [`crate::confirm::preview_confirm_apply`].

pub mod audit;
pub mod configs;
pub mod contacts;
pub mod itglue;
pub mod rollback;
pub mod settings;

use serde::Serialize;

/// Who runs this when `--initiated-by` / `OFFRAMP_INITIATED_BY` does not say: the OS user.
pub fn initiated_by(given: Option<&str>) -> String {
    given.map(str::to_string).unwrap_or_else(|| {
        let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
        format!("cli:{user}")
    })
}

/// A report (or record) as pretty JSON on stdout: what `--json` prints.
pub fn print_json(value: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}
