//! Invariants of `plan`, over random declared and current states: making
//! the planned changes converges, and a converged state plans nothing.

use boxhook_admin::{plan, Change, DesiredState, Target, Webhook};
use proptest::prelude::*;

const ADDRESSES: [&str; 3] = [
    "https://a.example.com/box",
    "https://b.example.com/box",
    "https://c.example.com/other",
];
const TRIGGERS: [&str; 4] = [
    "FILE.UPLOADED",
    "FILE.TRASHED",
    "FILE.PREVIEWED",
    "COMMENT.CREATED",
];

fn target(n: u8) -> Target {
    // Folders only, so every trigger above applies.
    Target::folder((u32::from(n) + 1).to_string())
}

fn triggers(mask: u8) -> Vec<String> {
    let picked: Vec<String> = TRIGGERS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, t)| (*t).to_owned())
        .collect();
    if picked.is_empty() {
        vec![TRIGGERS[0].to_owned()]
    } else {
        picked
    }
}

/// Declared: a set of targets (0..8) with an address and triggers each.
fn desired_toml(entries: &[(u8, usize, u8)]) -> String {
    use std::fmt::Write as _;
    let mut seen = std::collections::BTreeSet::new();
    let mut toml = String::new();
    for (t, a, m) in entries.iter().filter(|(t, _, _)| seen.insert(*t)) {
        let list: Vec<String> = triggers(*m).iter().map(|t| format!("\"{t}\"")).collect();
        let _ = write!(
            toml,
            "[[webhook]]\ntarget = \"{}\"\naddress = \"{}\"\ntriggers = [{}]\n",
            target(*t),
            ADDRESSES[*a],
            list.join(", ")
        );
    }
    toml
}

/// What Box would hold after `changes`, made one by one.
fn make(current: &[Webhook], changes: &[Change]) -> Vec<Webhook> {
    let mut after: Vec<Webhook> = current.to_vec();
    let mut next_id = 1000;
    for change in changes {
        match change {
            Change::Create { webhook } => {
                next_id += 1;
                after.push(Webhook {
                    id: next_id.to_string(),
                    target: webhook.target.parse().expect("target"),
                    address: webhook.address.clone(),
                    triggers: webhook.triggers.clone(),
                    created_at: None,
                });
            }
            Change::Update { id, webhook, .. } => {
                let w = after
                    .iter_mut()
                    .find(|w| &w.id == id)
                    .expect("updated id exists");
                w.address.clone_from(&webhook.address);
                w.triggers.clone_from(&webhook.triggers);
            }
            Change::Delete { id, .. } => after.retain(|w| &w.id != id),
            Change::Unchanged { .. } => {}
        }
    }
    after
}

proptest! {
    #[test]
    fn applying_a_plan_converges(
        declared in proptest::collection::vec((0_u8..8, 0_usize..3, any::<u8>()), 0..8),
        existing in proptest::collection::btree_map(0_u8..8, (0_usize..3, any::<u8>()), 0..8),
        prune in any::<bool>(),
    ) {
        let desired = DesiredState::parse(&desired_toml(&declared)).expect("valid");
        let current: Vec<Webhook> = existing
            .iter()
            .enumerate()
            .map(|(i, (t, (a, m)))| Webhook {
                id: (i + 1).to_string(),
                target: target(*t),
                address: ADDRESSES[*a].to_owned(),
                triggers: triggers(*m),
                created_at: None,
            })
            .collect();
        let changes = plan(&desired, &current, prune);
        // One change per declared webhook, in the file's order.
        let declared_changes = changes.iter().filter(|c| !matches!(c, Change::Delete { .. })).count();
        prop_assert_eq!(declared_changes, desired.webhooks().len());
        // Only webhooks to a declared address, on an undeclared target, are deleted.
        for change in &changes {
            if let Change::Delete { target, address, .. } = change {
                prop_assert!(prune);
                prop_assert!(desired.has_address(address));
                prop_assert!(desired.on_target(&target.parse().expect("target")).is_none());
            }
        }
        let after = make(&current, &changes);
        // One webhook per target, whatever happened.
        let mut targets: Vec<&Target> = after.iter().map(|w| &w.target).collect();
        targets.sort();
        targets.dedup();
        prop_assert_eq!(targets.len(), after.len());
        // Converged: a second plan changes nothing.
        let again = plan(&desired, &after, prune);
        prop_assert!(again.iter().all(|c| matches!(c, Change::Unchanged { .. })), "{:?}", again);
    }

    #[test]
    fn targets_parse_without_panicking_and_round_trip(text in ".{0,40}") {
        if let Ok(target) = text.parse::<Target>() {
            prop_assert_eq!(target.to_string(), text);
        }
    }
}
