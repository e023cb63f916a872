//! Workflow 002's export archive and PSA policy (docs/workflows.md#002-export-archive,
//! docs/workflows.md#002-psa-policy): the export IT Glue serves is copied to S3 (moto: a
//! bucket with Object Lock, versioning and a KMS key, made here) before the organization
//! is deleted; the trail records the object, never IT Glue's link; a copy that fails stops
//! the deletion unless `force_without_export`; the policy's three values, global and per
//! organization.
//!
//! Run: `scripts/with-moto.sh cargo nextest run --workspace -E 'test(/^itglue_archive::/)'`

use std::time::Duration;

use aws_sdk_s3::types::{
    BucketVersioningStatus, DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
    ObjectLockRule, ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, VersioningConfiguration,
};
use offramp::adapters::archive_local::LocalDirArchive;
use offramp::adapters::archive_s3::{S3ArchiveSettings, S3ExportArchive};
use offramp::adapters::itglue::{ItGlueClient, ItGlueSettings, default_http_settings};
use offramp::domain::{
    ArchivedExport, ExportObject, GLOBAL_SCOPE, ItGluePsaPolicy, OffboardedCriteria, OperationEventKind, SettingRecord,
};
use offramp::error::{ArchiveError, ErrorCode};
use offramp::ports::{AuditStore, ExportArchive, SettingsStore, async_trait};
use offramp::workflows::delete_itglue_org::{
    DeleteOrgDeps, DeleteOrgOptions, DeleteOrgReport, DeleteOrgRequest, delete_itglue_org,
};
use offramp::workflows::org_settings::{ITGLUE_NAMESPACE, ITGLUE_PSA_POLICY};
use offramp_sandbox::{ITGLUE_API_KEY, Sandbox, SandboxConfig, export_link_token};
use offramp_tests::moto;
use offramp_tests::psa::PsaHarness;
use sha2::Digest;

const ADATUM: &str = "9002";

async fn sandbox() -> Sandbox {
    let sandbox = Sandbox::start(SandboxConfig { large_client_configs: 0, ..SandboxConfig::default() }).await.unwrap();
    sandbox.set_itglue_deletion_delay(Duration::from_millis(100));
    sandbox.itglue().set_export_delay(Duration::from_millis(50));
    sandbox
}

fn itglue(sandbox: &Sandbox) -> ItGlueClient {
    let mut http = default_http_settings();
    http.max_retries = 1;
    http.base_backoff = Duration::from_millis(20);
    ItGlueClient::new(ItGlueSettings { url: sandbox.itglue_url(), api_key: ITGLUE_API_KEY.into() }, http).unwrap()
}

/// Export links name `localhost:PORT`: the same sandbox, another origin than the API's
/// `127.0.0.1:PORT`, as a storage host would be.
fn links_on_another_host(sandbox: &Sandbox) {
    let url = url::Url::parse(&sandbox.itglue_url()).unwrap();
    sandbox.itglue().set_export_download_host(Some(format!("localhost:{}", url.port().unwrap())));
}

fn options(policy: ItGluePsaPolicy) -> DeleteOrgOptions {
    DeleteOrgOptions {
        psa_policy: policy,
        offboarded: OffboardedCriteria { statuses: vec!["Offboarded".into()], ..Default::default() },
        export_wait: Duration::from_secs(10),
        deletion_wait: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
        ..DeleteOrgOptions::default()
    }
}

fn by_id(id: &str) -> DeleteOrgRequest {
    DeleteOrgRequest {
        org_id: Some(id.into()),
        confirm_delete: true,
        initiated_by: Some("admin@msp.example".into()),
        ..DeleteOrgRequest::default()
    }
}

/// The report and every record of the operation, as text: the link (its token, its path)
/// must appear in none of them.
async fn assert_no_link(report: &DeleteOrgReport, audit: &dyn AuditStore, export_id: i64) {
    let mut text = serde_json::to_string(report).unwrap();
    if let Some(id) = &report.operation_id {
        let detail = audit.operation(id).await.unwrap().expect("recorded");
        text.push_str(&serde_json::to_string(&detail).unwrap());
    }
    let token = export_link_token(export_id);
    assert!(!text.contains(&token) && !text.contains("_exports/"), "IT Glue's link was kept: {text}");
}

/// The bucket as the template makes it: Object Lock (which turns versioning on),
/// versioning stated anyway, a default GOVERNANCE retention, SSE-KMS with the stack's key.
async fn locked_bucket(s3: &aws_sdk_s3::Client, kms_key: &str) -> String {
    let bucket = moto::unique_name("offramp-exports");
    s3.create_bucket().bucket(&bucket).object_lock_enabled_for_bucket(true).send().await.unwrap();
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    s3.put_bucket_versioning().bucket(&bucket).versioning_configuration(enabled).send().await.unwrap();
    let retention = DefaultRetention::builder().mode(ObjectLockRetentionMode::Governance).days(1).build();
    let lock = ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(ObjectLockRule::builder().default_retention(retention).build())
        .build();
    s3.put_object_lock_configuration().bucket(&bucket).object_lock_configuration(lock).send().await.unwrap();
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(kms_key)
        .build()
        .unwrap();
    let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default).build();
    let encryption = ServerSideEncryptionConfiguration::builder().rules(rule).build().unwrap();
    s3.put_bucket_encryption().bucket(&bucket).server_side_encryption_configuration(encryption).send().await.unwrap();
    bucket
}

#[tokio::test]
async fn a_deletion_archives_the_export_in_a_locked_encrypted_bucket_first() {
    let sandbox = sandbox().await;
    links_on_another_host(&sandbox);
    let client = itglue(&sandbox);
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    let s3 = moto::s3_client().await;
    let kms_key = moto::create_kms_key("offramp exports (test)").await;
    let bucket = locked_bucket(&s3, &kms_key).await;
    let settings = S3ArchiveSettings { bucket: bucket.clone(), kms_key_id: Some(kms_key.clone()), retention_days: 30 };
    let archive = S3ExportArchive::new(s3.clone(), settings);
    let deps = DeleteOrgDeps {
        docs: &client,
        audit: h.audit.as_ref(),
        psa: Some(h.psa.as_ref()),
        settings: Some(h.audit.as_ref()),
        archive: Some(&archive),
        options: options(ItGluePsaPolicy::AllowUnlinked),
    };

    let report = delete_itglue_org(&deps, by_id(ADATUM)).await;
    assert!(report.success && report.deleted, "{:?} {:?}", report.errors, report.warnings);
    let export_id: i64 = report.export.as_ref().unwrap().id.parse().unwrap();
    let served = sandbox.itglue().export_content(export_id);
    assert_eq!((sandbox.itglue().export_downloads(), sandbox.itglue().export_downloads_with_key()), (1, 0));

    // What the report says was stored is what S3 holds, byte for byte.
    let archived: ArchivedExport = report.archive.clone().expect("archived");
    assert_eq!((archived.store.as_str(), archived.bucket.as_str()), ("s3", bucket.as_str()));
    assert_eq!(archived.sha256, hex::encode(sha2::Sha256::digest(&served)));
    assert_eq!(archived.size, served.len() as u64);
    let version = archived.version_id.clone().expect("a versioned bucket answers a version id");
    let object = s3.get_object().bucket(&bucket).key(&archived.key).version_id(&version).send().await.unwrap();
    assert_eq!(object.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert!(object.ssekms_key_id().is_some_and(|k| k.contains(kms_key.rsplit('/').next().unwrap())), "{object:?}");
    let retain_until = object.object_lock_retain_until_date().copied().expect("a retention date");
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert!(bytes.as_ref() == served.as_slice(), "the archived copy differs from what IT Glue served");

    // Object Lock: governance mode, about 30 days from now (read through HeadObject: moto's
    // GetObjectRetention answers 500).
    let head = s3.head_object().bucket(&bucket).key(&archived.key).version_id(&version).send().await.unwrap();
    assert_eq!(head.object_lock_mode(), Some(&aws_sdk_s3::types::ObjectLockMode::Governance));
    assert_eq!(head.object_lock_retain_until_date(), Some(&retain_until));
    assert_eq!(head.version_id(), Some(version.as_str()));
    let days = (retain_until.secs() - chrono::Utc::now().timestamp()) as f64 / 86_400.0;
    assert!((29.9..=30.1).contains(&days), "retained {days} days");

    // The trail records the object (bucket, key, version, digest, size), never the link.
    let op = h.audit.operation(report.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    let recorded = op.changes.iter().find(|c| c.item_type == "itglue_export").expect("the export's record");
    let archive_record = &recorded.after.as_ref().unwrap()["archive"];
    assert_eq!(archive_record["bucket"], bucket.as_str());
    assert_eq!(archive_record["key"], archived.key.as_str());
    assert_eq!(archive_record["version_id"], version.as_str());
    assert_eq!(archive_record["sha256"], archived.sha256.as_str());
    assert_eq!(archive_record["size"], served.len());
    assert_no_link(&report, h.audit.as_ref(), export_id).await;
}

/// An archive that refuses every object.
struct RefusingArchive;

#[async_trait]
impl ExportArchive for RefusingArchive {
    async fn store(&self, _: &ExportObject) -> Result<ArchivedExport, ArchiveError> {
        Err(ArchiveError::Store { store: "s3://refusing".into(), message: "AccessDenied".into() })
    }
}

#[tokio::test]
async fn no_copy_no_deletion_unless_forced_and_the_key_stays_on_itglue() {
    let sandbox = sandbox().await;
    let client = itglue(&sandbox);
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    let base = DeleteOrgDeps {
        docs: &client,
        audit: h.audit.as_ref(),
        psa: None,
        settings: None,
        archive: Some(&RefusingArchive),
        options: options(ItGluePsaPolicy::Off),
    };

    // The store refuses: nothing deleted, the refusal says why, the link is nowhere.
    let stopped = delete_itglue_org(&base, by_id(ADATUM)).await;
    assert_eq!(stopped.errors[0].code, ErrorCode::DeletionBlocked, "{:?}", stopped.errors);
    assert!(stopped.errors[0].message.contains("could not be copied to the archive"), "{:?}", stopped.errors);
    assert!(sandbox.itglue().organization_exists(9002) && sandbox.itglue().deletions_requested() == 0);
    let first_export: i64 = stopped.export.as_ref().unwrap().id.parse().unwrap();
    assert_no_link(&stopped, h.audit.as_ref(), first_export).await;
    // The link was on IT Glue's own origin: the API key went with it (and nowhere else).
    assert_eq!(sandbox.itglue().export_downloads_with_key(), 1);

    // No archive configured, or an export over the cap: stopped the same way.
    let none = delete_itglue_org(&DeleteOrgDeps { archive: None, ..base.clone() }, by_id(ADATUM)).await;
    assert!(none.errors[0].message.contains("OFFRAMP_EXPORT_BUCKET"), "{:?}", none.errors);
    let local = LocalDirArchive::new(h.dir.path().join("exports"));
    let small = DeleteOrgOptions { export_max_bytes: 4096, ..options(ItGluePsaPolicy::Off) };
    let too_big =
        delete_itglue_org(&DeleteOrgDeps { archive: Some(&local), options: small, ..base.clone() }, by_id(ADATUM))
            .await;
    assert!(too_big.errors[0].message.contains("could not be downloaded"), "{:?}", too_big.errors);
    assert_eq!(sandbox.itglue().deletions_requested(), 0);

    // force_without_export: deleted, said so, and recorded in the request and at completion.
    let forced = delete_itglue_org(&base, DeleteOrgRequest { force_without_export: true, ..by_id(ADATUM) }).await;
    assert!(forced.success && forced.archive.is_none(), "{:?}", forced.errors);
    assert!(forced.warnings.iter().any(|w| w.contains("force_without_export")), "{:?}", forced.warnings);
    assert!(sandbox.itglue().marked_for_deletion(9002));
    let op = h.audit.operation(forced.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    assert_eq!(op.operation.input["request"]["force_without_export"], true);
    let completed = op.events.iter().find(|e| e.kind == OperationEventKind::Completed).expect("completed");
    assert_eq!(completed.detail["force_without_export"], true, "{:?}", completed.detail);
    let forced_export: i64 = forced.export.as_ref().unwrap().id.parse().unwrap();
    assert_no_link(&forced, h.audit.as_ref(), forced_export).await;
}

async fn set_policy(store: &dyn SettingsStore, scope: &str, value: &str) {
    let record = SettingRecord {
        psa: ITGLUE_NAMESPACE.into(),
        scope: scope.into(),
        key: ITGLUE_PSA_POLICY.into(),
        value: Some(value.into()),
        set_by: "admin@msp.example".into(),
        set_at: offramp::domain::now(),
    };
    store.put_setting(&record).await.unwrap();
}

fn dry(id: &str) -> DeleteOrgRequest {
    DeleteOrgRequest { dry_run: true, force_delete: true, ..by_id(id) }
}

/// 9005 Fabrikam Legal is linked to ConnectWise company 100 (active); 9007 Contoso Dental
/// Lab is linked to none.
#[tokio::test]
async fn the_psa_policy_has_three_values_global_and_per_organization() {
    let sandbox = sandbox().await;
    let client = itglue(&sandbox);
    let h = PsaHarness::new(&sandbox, offramp::domain::PsaKind::ConnectWise);
    let with = |policy| DeleteOrgDeps {
        docs: &client,
        audit: h.audit.as_ref(),
        psa: Some(h.psa.as_ref()),
        settings: Some(h.audit.as_ref()),
        archive: None,
        options: options(policy),
    };
    let code = |report: &DeleteOrgReport| report.errors.first().map(|e| e.code);

    // allow_unlinked (the default): a linked active company is refused, an unlinked org may go.
    assert_eq!(DeleteOrgOptions::default().psa_policy, ItGluePsaPolicy::AllowUnlinked);
    let linked = delete_itglue_org(&with(ItGluePsaPolicy::AllowUnlinked), dry("9005")).await;
    assert_eq!(code(&linked), Some(ErrorCode::DeletionBlocked), "{linked:?}");
    assert!(linked.errors[0].message.contains("not offboarded"), "{:?}", linked.errors);
    let unlinked = delete_itglue_org(&with(ItGluePsaPolicy::AllowUnlinked), dry("9007")).await;
    assert!(unlinked.success, "{:?}", unlinked.errors);

    // require_offboarded_psa_company: the unlinked one is refused too.
    let required = delete_itglue_org(&with(ItGluePsaPolicy::RequireOffboardedPsaCompany), dry("9007")).await;
    assert_eq!(code(&required), Some(ErrorCode::DeletionBlocked), "{required:?}");
    assert!(required.errors[0].message.contains("not linked"), "{:?}", required.errors);

    // off: the PSA is not asked, and need not exist.
    let no_psa = DeleteOrgDeps { psa: None, ..with(ItGluePsaPolicy::Off) };
    let off = delete_itglue_org(&no_psa, dry("9005")).await;
    assert!(off.success, "{:?}", off.errors);
    let needs_psa =
        delete_itglue_org(&DeleteOrgDeps { psa: None, ..with(ItGluePsaPolicy::AllowUnlinked) }, dry("9005")).await;
    assert_eq!(code(&needs_psa), Some(ErrorCode::ConfigurationError), "{needs_psa:?}");

    // Per organization, over the global value; the run records which applied and why.
    set_policy(h.audit.as_ref(), "9005", "off").await;
    let own = delete_itglue_org(&with(ItGluePsaPolicy::AllowUnlinked), dry("9005")).await;
    assert!(own.success, "{:?}", own.errors);
    let op = h.audit.operation(own.operation_id.as_deref().unwrap()).await.unwrap().unwrap();
    assert_eq!(op.operation.input["psa_policy"], serde_json::json!({"policy": "off", "source": "organization"}));
    // The global setting over the environment's.
    set_policy(h.audit.as_ref(), GLOBAL_SCOPE, "require_offboarded_psa_company").await;
    let global = delete_itglue_org(&with(ItGluePsaPolicy::Off), dry("9007")).await;
    assert_eq!(code(&global), Some(ErrorCode::DeletionBlocked), "{global:?}");
    assert!(global.errors[0].message.contains("(global)"), "{:?}", global.errors);
    assert_eq!(sandbox.itglue().deletions_requested(), 0);
}
