//! A webhook as the fake holds it, and its two JSON shapes.

use serde_json::{json, Value};

/// A webhook held by the fake API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeWebhook {
    /// Its id (digits).
    pub id: String,
    /// Whose it is: `token:<user>` for a static token,
    /// `<client_id>/<subject_type>:<subject_id>` for a granted one.
    pub owner: String,
    /// `file` or `folder`.
    pub target_type: String,
    /// The item's id.
    pub target_id: String,
    /// The delivery address.
    pub address: String,
    /// The triggers.
    pub triggers: Vec<String>,
}

impl FakeWebhook {
    /// `type:id` of the target.
    #[must_use]
    pub fn target(&self) -> String {
        format!("{}:{}", self.target_type, self.target_id)
    }

    pub(super) fn full(&self) -> Value {
        json!({
            "id": self.id,
            "type": "webhook",
            "target": {"id": self.target_id, "type": self.target_type},
            "created_by": {"id": "11446498", "type": "user", "name": "Aaron Levie", "login": "ceo@example.com"},
            "created_at": "2026-11-30T10:53:43-08:00",
            "address": self.address,
            "triggers": self.triggers,
        })
    }

    pub(super) fn mini(&self) -> Value {
        json!({
            "id": self.id,
            "type": "webhook",
            "target": {"id": self.target_id, "type": self.target_type},
        })
    }
}
