//! `explain --json` and `schema`.

use super::*;

// ── explain ──────────────────────────────────────────────────────────────────────────────────

fn explain_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["explain", "--json"];
    all.extend_from_slice(args);
    let out = kekkai(dir, &all);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[rstest]
#[case::embedded_default(&[])]
#[case::untrusted(&["-p", "untrusted"])]
#[case::service(&["-p", "service"])]
#[case::network_client(&["-p", "network-client"])]
fn explain_json_lists_the_13_steps_in_order(#[case] args: &[&str]) {
    let dir = Scratch::new("cli-explain");
    let json = explain_json(dir.path(), args);
    let steps = json["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let order: Vec<&str> = ORDER.iter().map(|i| i.step.name()).collect();
    assert_eq!(names, order);
    assert_eq!(names.len(), 13);
    for ((i, s), number) in steps.iter().enumerate().zip(1u64..) {
        assert_eq!(s["number"].as_u64(), Some(number));
        let side = if i < 3 { "parent" } else { "child" };
        assert_eq!(s["side"].as_str(), Some(side), "step {}", names[i]);
        assert!(!s["why"].as_str().unwrap().is_empty());
        assert!(s["details"].is_array());
    }
}

#[test]
fn explain_json_shows_the_merged_policy() {
    let dir = Scratch::new("cli-merged");
    let json = explain_json(dir.path(), &["-p", "untrusted"]);
    assert_eq!(json["policy"]["name"], "untrusted");
    assert_eq!(
        json["policy"]["sources"],
        serde_json::json!(["<shipped>/untrusted.yaml", "<shipped>/default.yaml"])
    );
    // From default, not overridden by untrusted.
    assert_eq!(json["merged"]["hostname"], "kekkai");
    // From untrusted, with the variable expanded.
    let pwd = dir.path().display().to_string();
    let work = json["merged"]["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["to"] == "/work")
        .unwrap();
    assert_eq!(work["bind"].as_str(), Some(pwd.as_str()));
    assert_eq!(json["merged"]["seccomp"]["preset"], "strict");
}

#[test]
fn explain_of_an_invalid_policy_exits_1() {
    let dir = Scratch::new("cli-explain-bad");
    dir.write("bad.yaml", "version: 1\nrlimits: {nofile: 1}\n");
    let out = kekkai(dir.path(), &["explain", "-p", "bad.yaml"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad.yaml:2:19: rlimits.nofile: at least 3"),
        "{}",
        stderr(&out)
    );
}

// ── schema ───────────────────────────────────────────────────────────────────────────────────

fn schema() -> Value {
    let dir = Scratch::new("cli-schema");
    let out = kekkai(dir.path(), &["schema"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn yaml_to_json(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

#[test]
fn schema_is_a_valid_json_schema() {
    let schema = schema();
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("not a valid JSON Schema: {e}");
    }
    jsonschema::validator_for(&schema).unwrap();
    assert_eq!(schema["required"], serde_json::json!(["version"]));
}

/// `host-privileges` and `identity.owner-of` are in the schema, documented, with their values.
#[test]
fn schema_knows_host_privileges() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    for text in [
        "{version: 1, host-privileges: deny}",
        "{version: 1, host-privileges: allow, identity: {owner-of: /srv/project}}",
    ] {
        assert!(validator.is_valid(&yaml_to_json(text)), "{text}");
    }
    let schema = schema();
    let doc = schema["properties"]["host-privileges"]["description"]
        .as_str()
        .unwrap();
    assert!(
        doc.starts_with("`deny` (default): nothing the program does"),
        "{doc}"
    );
    let values = schema["$defs"]["HostPrivileges"]["oneOf"].to_string();
    assert!(values.contains(r#""const":"deny""#) && values.contains(r#""const":"allow""#));
}

#[test]
fn schema_accepts_every_shipped_policy() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    for file in support::shipped_policy_files() {
        let json = yaml_to_json(&std::fs::read_to_string(&file).unwrap());
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
}

/// Changes to the default policy the schema must reject, as (JSON pointer of the parent, key,
/// value).
#[rstest]
#[case::unknown_top_key("", "mountz", serde_json::json!([]))]
#[case::unknown_mount_key("/mounts/0", "writeable", serde_json::json!(true))]
#[case::unknown_limit("/limits", "memroy", serde_json::json!("1G"))]
#[case::unknown_rule_key("/seccomp", "dany", serde_json::json!(["ptrace"]))]
#[case::wrong_version("", "version", serde_json::json!(2))]
#[case::unknown_namespace("", "namespaces", serde_json::json!(["user", "nett"]))]
#[case::host_privileges_value("", "host-privileges", serde_json::json!("yes"))]
#[case::host_privileges_bool("", "host-privileges", serde_json::json!(true))]
#[case::identity_owner_of_number("/identity", "owner-of", serde_json::json!(5))]
#[case::network_value("", "network", serde_json::json!("internet"))]
#[case::bool_as_string("/rootfs", "writable", serde_json::json!("yes"))]
#[case::bad_size("/limits", "memory", serde_json::json!("lots"))]
#[case::bad_duration("", "timeout", serde_json::json!("5x"))]
fn schema_rejects(#[case] at: &str, #[case] key: &str, #[case] value: Value) {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let text = std::fs::read_to_string(manifest_dir().join("policies/default.yaml")).unwrap();
    let mut json = yaml_to_json(&text);
    assert!(validator.is_valid(&json));
    json.pointer_mut(at)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.into(), value);
    assert!(!validator.is_valid(&json), "accepted {key} at {at:?}");
}

#[test]
fn schema_requires_a_version() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    assert!(!validator.is_valid(&yaml_to_json("name: x\n")));
    assert!(validator.is_valid(&yaml_to_json("version: 1\nname: x\n")));
}

/// The same rule for files with no node to point at: every message has a line and column.
#[rstest]
#[case::empty("empty.yaml", b"".as_slice(), "empty.yaml:1:1: ")]
#[case::only_a_comment("comment.yaml", b"# nothing\n".as_slice(), "comment.yaml:1:1: ")]
#[case::two_documents("two.yaml", b"version: 1\n---\nversion: 1\n".as_slice(), "two.yaml:2:")]
fn check_places_document_level_errors(
    #[case] name: &str,
    #[case] contents: &[u8],
    #[case] place: &str,
) {
    let dir = Scratch::new("cli-doc");
    dir.write(name, contents);
    let out = kekkai(dir.path(), &["check", name]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).lines().any(|l| l.starts_with(place)),
        "{}",
        stderr(&out)
    );
}
