//! The sandbox's ConnectWise data. Tests depend on these ids.
//!
//! Company statuses: 1 Active, 2 Inactive, 3 Offboarded, 4 Not-Approved.
//! Configuration statuses: 1 Active, 2 Inactive (closed), 3 On Order, 4 Disposed (closed),
//! 5 Returned (closed).
//!
//! | Company | Name | Status | Configurations (ids) |
//! |---|---|---|---|
//! | 100 | Fabrikam Legal | Active | 10001–10005, all Active |
//! | 250 | Contoso Dental (the demo client) | Offboarded | 25001–25012: 8 Active, 1 On Order, 2 Inactive, 1 Disposed |
//! | 260 | Adatum Travel | Offboarded | none |
//! | 300 | Northwind Logistics (the large client) | Inactive | 300001.., all Active (count configurable, default 10,000) |
//! | 410 | Litware Inc | Offboarded | 41001–41002, Active |
//! | 411 | LITWARE INC | Offboarded | 41101–41102, Active |
//! | 500 | Bench Client | Offboarded | 500001.., all Active (only when asked for) |

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

// Fake credentials of the sandbox's API member; not secrets of anything real.
pub const CW_COMPANY_ID: &str = "offramp_demo";
pub const CW_PUBLIC_KEY: &str = "sandbox-public-4f2a";
pub const CW_PRIVATE_KEY: &str = "sandbox-private-9c81e7";
pub const CW_CLIENT_ID: &str = "3b1f8a52-7c0e-4d6b-9a51-0f7e2c4d8b19";

pub struct CwData {
    pub companies: BTreeMap<i64, Value>,
    pub configs: BTreeMap<i64, Value>,
    pub company_statuses: Vec<Value>,
    pub config_statuses: Vec<Value>,
    pub update_failures: HashMap<i64, (u16, String)>,
    pub patch_counts: HashMap<i64, usize>,
}

impl CwData {
    pub fn config_status(&self, id: i64) -> Option<Value> {
        self.config_statuses.iter().find(|s| s["id"] == json!(id)).cloned()
    }
}

fn info(kind: &str, id: i64) -> Value {
    json!({ "lastUpdated": "2026-11-01T09:00:00Z", "updatedBy": "sandbox", format!("{kind}_href"): format!("/{kind}/{id}") })
}

/// Point a configuration at a status record, as ConnectWise does on update.
pub fn apply_status(config: &mut Value, status: &Value) {
    let id = status["id"].as_i64().unwrap_or_default();
    config["status"] = json!({ "id": id, "name": status["description"], "_info": info("status", id) });
    config["activeFlag"] = json!(!status["closedFlag"].as_bool().unwrap_or(false));
}

pub fn connectwise(large_configs: usize, bench_configs: usize) -> CwData {
    let company_statuses = vec![
        json!({"id": 1, "name": "Active", "defaultFlag": true, "inactiveFlag": false}),
        json!({"id": 2, "name": "Inactive", "defaultFlag": false, "inactiveFlag": true}),
        json!({"id": 3, "name": "Offboarded", "defaultFlag": false, "inactiveFlag": true}),
        json!({"id": 4, "name": "Not-Approved", "defaultFlag": false, "inactiveFlag": false}),
    ];
    let config_statuses = vec![
        json!({"id": 1, "description": "Active", "closedFlag": false, "defaultFlag": true}),
        json!({"id": 2, "description": "Inactive", "closedFlag": true, "defaultFlag": false}),
        json!({"id": 3, "description": "On Order", "closedFlag": false, "defaultFlag": false}),
        json!({"id": 4, "description": "Disposed", "closedFlag": true, "defaultFlag": false}),
        json!({"id": 5, "description": "Returned", "closedFlag": true, "defaultFlag": false}),
    ];
    let mut data = CwData {
        companies: BTreeMap::new(),
        configs: BTreeMap::new(),
        company_statuses,
        config_statuses,
        update_failures: HashMap::new(),
        patch_counts: HashMap::new(),
    };
    let mut company = |id: i64, identifier: &str, name: &str, status: i64| {
        let status_name = data.company_statuses.iter().find(|s| s["id"] == json!(status)).map(|s| s["name"].clone());
        data.companies.insert(
            id,
            json!({
                "id": id, "identifier": identifier, "name": name,
                "status": {"id": status, "name": status_name, "_info": info("status", status)},
                "deletedFlag": false, "types": [], "_info": info("company", id),
            }),
        );
    };
    company(100, "FabrikamLegal", "Fabrikam Legal", 1);
    company(250, "ContosoDental", "Contoso Dental", 3);
    company(260, "AdatumTravel", "Adatum Travel", 3);
    company(300, "NorthwindLogistics", "Northwind Logistics", 2);
    company(410, "LitwareInc", "Litware Inc", 3);
    company(411, "LITWAREINC", "LITWARE INC", 3);
    if bench_configs > 0 {
        company(500, "BenchClient", "Bench Client", 3);
    }

    let add = |data: &mut CwData, id: i64, company_id: i64, name: &str, type_name: &str, status: i64| {
        let company = &data.companies[&company_id];
        let mut config = json!({
            "id": id, "name": name,
            "type": {"id": 1, "name": type_name},
            "company": {"id": company_id, "identifier": company["identifier"], "name": company["name"]},
            "serialNumber": format!("SN{id:08}"), "tagNumber": format!("T{id}"),
            "_info": info("configuration", id),
        });
        let status = data.config_status(status).expect("seeded status");
        apply_status(&mut config, &status);
        data.configs.insert(id, config);
    };
    for i in 1..=5 {
        add(&mut data, 10000 + i, 100, &format!("Fabrikam Workstation {i:02}"), "Workstation", 1);
    }
    let contoso: [(&str, &str, i64); 12] = [
        ("Firewall - HQ", "Firewall", 1),
        ("Reception PC 01", "Workstation", 1),
        ("Reception PC 02", "Workstation", 1),
        ("Dr Patel Laptop", "Laptop", 1),
        ("Xray Server", "Server", 1),
        ("Switch - Surgery 2", "Network Switch", 1),
        ("Practice Management Server", "Server", 1),
        ("Wi-Fi Controller", "Network", 1),
        ("Replacement NAS", "Storage", 3),
        ("Old Reception PC", "Workstation", 2),
        ("Old Backup Appliance", "Backup", 2),
        ("Dental Chair Tablet", "Tablet", 4),
    ];
    for (i, (name, type_name, status)) in contoso.iter().enumerate() {
        add(&mut data, 25001 + i as i64, 250, name, type_name, *status);
    }
    for i in 0..large_configs as i64 {
        add(&mut data, 300001 + i, 300, &format!("Northwind Device {:05}", i + 1), "Workstation", 1);
    }
    for i in 1..=2 {
        add(&mut data, 41000 + i, 410, &format!("Litware PC {i}"), "Workstation", 1);
        add(&mut data, 41100 + i, 411, &format!("LITWARE Laptop {i}"), "Laptop", 1);
    }
    for i in 0..bench_configs as i64 {
        add(&mut data, 500001 + i, 500, &format!("Bench Device {:05}", i + 1), "Workstation", 1);
    }
    data
}
