//! The local pre-checks: every rule Box would refuse, all reported at once.

use boxhook_admin::desired::address_problems;
use boxhook_admin::{DesiredError, DesiredState, Violation, MAX_WEBHOOKS};
use proptest::prelude::*;

fn entry(target: &str, address: &str, triggers: &str) -> String {
    format!(
        "[[webhook]]\ntarget = \"{target}\"\naddress = \"{address}\"\ntriggers = [{triggers}]\n"
    )
}

fn violations(toml: &str) -> Vec<String> {
    match DesiredState::parse(toml) {
        Err(DesiredError::Violations(all)) => all.iter().map(Violation::to_string).collect(),
        other => panic!("want violations, got {other:?}"),
    }
}

#[test]
fn each_rule_is_named_with_its_webhook() {
    let ok = "https://hooks.example.com/box";
    let table: &[(&str, &str, &str, &str)] = &[
        ("folder:0", ok, r#""FILE.UPLOADED""#,
         "webhook 1 (folder:0): Box allows no webhook on the root folder 0; watch a folder inside it"),
        ("folder:1", "http://hooks.example.com/box", r#""FILE.UPLOADED""#,
         "webhook 1 (folder:1): the address must be https, not http"),
        ("folder:1", "https://hooks.example.com:8080/box", r#""FILE.UPLOADED""#,
         "webhook 1 (folder:1): the address must use port 443 (Box delivers nowhere else), not 8080"),
        ("folder:1", "https://box.com/hook", r#""FILE.UPLOADED""#,
         "webhook 1 (folder:1): the address must not be box.com or a subdomain of it (box.com)"),
        ("folder:1", "https://x.app.Box.com/hook", r#""FILE.UPLOADED""#,
         "webhook 1 (folder:1): the address must not be box.com or a subdomain of it (x.app.Box.com)"),
        ("folder:1", "hooks.example.com/box", r#""FILE.UPLOADED""#,
         "webhook 1 (folder:1): the address \"hooks.example.com/box\" is not a URL; write it as https://host/path"),
        ("file:5", ok, r#""FOLDER.CREATED""#,
         "webhook 1 (file:5): FOLDER.CREATED only applies to folders; put the webhook on the file's folder"),
        ("file:5", ok, r#""FILE.UPLOADED""#,
         "webhook 1 (file:5): FILE.UPLOADED only applies to folders (a file is never uploaded into a file)"),
        ("file:5", ok, r#""COLLABORATION.CREATED""#,
         "webhook 1 (file:5): COLLABORATION.CREATED only applies to folders; put the webhook on the file's folder"),
        ("folder:1", ok, r#""FILE.UPLOAD""#,
         "webhook 1 (folder:1): FILE.UPLOAD is not a Box trigger; did you mean FILE.UPLOADED?"),
        ("folder:1", ok, r#""file.uploaded""#,
         "webhook 1 (folder:1): file.uploaded is not a Box trigger; did you mean FILE.UPLOADED?"),
        ("folder:1", ok, r#""WEBHOOK.DELETED""#,
         "webhook 1 (folder:1): WEBHOOK.DELETED cannot be asked for: Box sends it to every webhook on its own"),
        ("folder:1", ok, "",
         "webhook 1 (folder:1): no triggers: list at least one, e.g. FILE.UPLOADED"),
        ("folder:1", ok, r#""FILE.UPLOADED", "FILE.UPLOADED""#,
         "webhook 1 (folder:1): FILE.UPLOADED is listed twice"),
        ("drive:1", ok, r#""FILE.UPLOADED""#,
         "webhook 1 (drive:1): the target type must be folder or file (lower case), e.g. folder:218730924451"),
        ("folder:abc", ok, r#""FILE.UPLOADED""#,
         "webhook 1 (folder:abc): the target id must be Box's numeric item id (the digits at the end of the item's URL in the Box web app)"),
    ];
    for (target, address, triggers, want) in table {
        assert_eq!(
            violations(&entry(target, address, triggers)),
            [*want],
            "{target} {address} {triggers}"
        );
    }
}

#[test]
fn all_violations_of_all_webhooks_come_at_once() {
    let toml = [
        entry("folder:0", "http://h.example.com:80/", r#""FILE.UPLOADED""#),
        entry("folder:7", "https://h.example.com/", r#""FILE.UPLOADED""#),
        entry("folder:7", "https://h.example.com/", r#""FILE.TRASHED""#),
    ]
    .concat();
    assert_eq!(
        violations(&toml),
        [
            "webhook 1 (folder:0): the address must be https, not http",
            "webhook 1 (folder:0): the address must use port 443 (Box delivers nowhere else), not 80",
            "webhook 1 (folder:0): Box allows no webhook on the root folder 0; watch a folder inside it",
            "webhook 3 (folder:7): webhook 2 has this target too; Box allows one webhook per item (per app and user): merge their triggers into one",
        ]
    );
}

#[test]
fn more_than_one_thousand_is_refused() {
    let toml: String = (1..=MAX_WEBHOOKS + 1)
        .map(|n| {
            entry(
                &format!("folder:{n}"),
                "https://h.example.com/",
                r#""FILE.UPLOADED""#,
            )
        })
        .collect();
    assert_eq!(
        violations(&toml),
        ["1001 webhooks are declared; Box allows at most 1000 per app and user: watch parent folders instead of single items, or split them across apps"]
    );
    let toml: String = (1..=MAX_WEBHOOKS)
        .map(|n| {
            entry(
                &format!("folder:{n}"),
                "https://h.example.com/",
                r#""FILE.UPLOADED""#,
            )
        })
        .collect();
    assert_eq!(
        DesiredState::parse(&toml)
            .expect("1000 is fine")
            .webhooks()
            .len(),
        1000
    );
}

#[test]
fn syntax_errors_say_what_the_file_looks_like() {
    let table = [
        "[[webhook]]\ntarget = \"folder:1\"\n",
        "[[webhook]]\ntarget = \"folder:1\"\naddress = \"https://h.example.com/\"\ntriggers = [\"FILE.UPLOADED\"]\nsecret = 1\n",
        "[[webhooks]]\n",
        "not toml",
    ];
    for toml in table {
        match DesiredState::parse(toml) {
            Err(err @ DesiredError::Syntax(_)) => assert!(
                err.to_string().ends_with(
                    "each webhook is a [[webhook]] table with target = \"folder:ID\" or \"file:ID\", \
                     address = \"https://...\" and triggers = [\"FILE.UPLOADED\", ...]"
                ),
                "{err}"
            ),
            other => panic!("{toml:?}: {other:?}"),
        }
    }
    assert_eq!(DesiredState::parse("").expect("empty").webhooks(), []);
}

proptest! {
    #[test]
    fn address_checks_never_panic(address in ".{0,80}") {
        let _ = address_problems(&address);
    }

    #[test]
    fn every_box_com_host_is_refused(label in "[a-z0-9-]{1,20}", port in proptest::option::of(Just(443_u16))) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let problems = address_problems(&format!("https://{label}.box.com{port}/hook"));
        prop_assert_eq!(problems.len(), 1);
        prop_assert!(problems[0].starts_with("the address must not be box.com"));
        // A host that merely ends in "box.com" is someone else's.
        let lookalike = format!("https://{label}box.com/hook");
        prop_assert!(address_problems(&lookalike).is_empty());
    }
}
