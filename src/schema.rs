//! `kekkai schema`: the JSON Schema of the policy language, generated from the same serde types
//! the loader uses, for yaml-language-server (`# yaml-language-server: $schema=...`).

use crate::policy::RawPolicy;

/// The schema as JSON.
pub fn policy_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(RawPolicy)).unwrap_or_default();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".into(),
            serde_json::Value::String("https://kekkai.invalid/schema/policy-v1.json".into()),
        );
        // Every file must say which language version it is written in.
        obj.insert("required".into(), serde_json::json!(["version"]));
    }
    schema
}
