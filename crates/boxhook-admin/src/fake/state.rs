//! The fake API's state and rules, apart from HTTP: webhooks per app and
//! user, tokens, and the answers Box documents.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::rules::{address_problem, form_pairs, target_problem};
use super::webhook::FakeWebhook;
use super::Paging;

/// How a call chosen by number is answered instead of served.
pub(crate) struct Failure {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<u64>,
    /// Box's error `code` and `message`, when the test chose them.
    pub(crate) text: Option<(String, String)>,
}

/// An answer: status, `Retry-After` / `WWW-Authenticate` when sent, JSON body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<u64>,
    pub(crate) www_authenticate: bool,
    pub(crate) body: Option<Value>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            retry_after: None,
            www_authenticate: false,
            body: Some(body),
        }
    }
}

pub(crate) struct App {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

pub(crate) struct State {
    pub(crate) static_tokens: HashMap<String, String>,
    pub(crate) apps: Vec<App>,
    pub(crate) token_ttl: u64,
    pub(crate) cap: usize,
    pub(crate) issued: HashMap<String, (String, Instant)>,
    pub(crate) webhooks: BTreeMap<u64, FakeWebhook>,
    pub(crate) next_id: u64,
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) total_calls: u64,
    pub(crate) failures: HashMap<u64, Failure>,
    pub(crate) paging: Paging,
    /// The most entries a list page holds, whatever `limit` asks.
    pub(crate) page_size: usize,
    /// Items (`type:id`) the acting user does not own: the list leaves
    /// their webhooks out, as Box's does.
    pub(crate) not_owned: HashSet<String>,
}

fn error(status: u16, code: &str, message: &str, request: u64) -> Answer {
    Answer::json(
        status,
        json!({
            "type": "error",
            "status": status,
            "code": code,
            "message": message,
            "context_info": {},
            "help_url": "http://developers.box.com/docs/#errors",
            "request_id": format!("fakereq{request:08x}"),
        }),
    )
}

fn oauth_error(error: &str, description: &str) -> Answer {
    Answer::json(
        400,
        json!({"error": error, "error_description": description}),
    )
}

/// The route name a call is counted under.
pub(crate) fn route(method: &str, path: &str) -> String {
    let shape = match path.strip_prefix("/2.0/webhooks/") {
        Some(_) => "/2.0/webhooks/{id}",
        None => path,
    };
    format!("{method} {shape}")
}

impl State {
    pub(crate) fn answer(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        auth: Option<&str>,
        body: &[u8],
    ) -> Answer {
        self.total_calls = self.total_calls.saturating_add(1);
        let n = self.total_calls;
        let count = self.calls.entry(route(method, path)).or_default();
        *count = count.saturating_add(1);
        if let Some(failure) = self.failures.get(&n) {
            let (status, retry_after) = (failure.status, failure.retry_after);
            let mut answer = if let Some((code, message)) = &failure.text {
                error(status, code, message, n)
            } else if status == 429 {
                error(
                    429,
                    "rate_limit_exceeded",
                    "Request rate limit exceeded, please try again later",
                    n,
                )
            } else {
                error(status, "internal_server_error", "Internal Server Error", n)
            };
            answer.retry_after = retry_after;
            return answer;
        }
        if path == "/oauth2/token" {
            return if method == "POST" {
                self.token(body)
            } else {
                error(405, "method_not_allowed", "Method Not Allowed", n)
            };
        }
        if path != "/2.0/webhooks" && !path.starts_with("/2.0/webhooks/") {
            return error(404, "not_found", "Not Found", n);
        }
        let Some(owner) = auth
            .and_then(|a| a.strip_prefix("Bearer "))
            .and_then(|t| self.owner_of(t))
        else {
            return Answer {
                status: 401,
                retry_after: None,
                www_authenticate: true,
                body: None,
            };
        };
        let id = path.strip_prefix("/2.0/webhooks/");
        match (method, id) {
            ("GET", None) => self.list(&owner, query, n),
            ("POST", None) => self.create(&owner, body, n),
            ("GET", Some(id)) => match self.find(&owner, id) {
                Some(w) => Answer::json(200, w.full()),
                None => error(404, "not_found", "Not Found", n),
            },
            ("PUT", Some(id)) => self.update(&owner, id, body, n),
            ("DELETE", Some(id)) => match self.find(&owner, id).map(|w| w.id.clone()) {
                Some(id) => {
                    self.webhooks.retain(|_, w| w.id != id);
                    Answer {
                        status: 204,
                        retry_after: None,
                        www_authenticate: false,
                        body: None,
                    }
                }
                None => error(404, "not_found", "Not Found", n),
            },
            _ => error(405, "method_not_allowed", "Method Not Allowed", n),
        }
    }

    fn owner_of(&self, token: &str) -> Option<String> {
        if let Some(user) = self.static_tokens.get(token) {
            return Some(format!("token:{user}"));
        }
        let (owner, expires) = self.issued.get(token)?;
        (Instant::now() < *expires).then(|| owner.clone())
    }

    fn find(&self, owner: &str, id: &str) -> Option<&FakeWebhook> {
        let key: u64 = id.parse().ok()?;
        self.webhooks.get(&key).filter(|w| w.owner == owner)
    }

    fn token(&mut self, body: &[u8]) -> Answer {
        let form: HashMap<String, String> = form_pairs(body);
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        if get("grant_type") != "client_credentials" {
            return oauth_error("unsupported_grant_type", "Grant type is not supported");
        }
        let known = self
            .apps
            .iter()
            .any(|a| a.client_id == get("client_id") && a.client_secret == get("client_secret"));
        if !known {
            return oauth_error("invalid_client", "The client credentials are invalid");
        }
        let subject_type = get("box_subject_type");
        if !matches!(subject_type, "enterprise" | "user") || get("box_subject_id").is_empty() {
            return oauth_error(
                "invalid_request",
                "Invalid box_subject_type or box_subject_id",
            );
        }
        let token = format!("fake-ccg-{}", self.issued.len().saturating_add(1));
        let owner = format!(
            "{}/{subject_type}:{}",
            get("client_id"),
            get("box_subject_id")
        );
        let now = Instant::now();
        let expires = now
            .checked_add(Duration::from_secs(self.token_ttl))
            .unwrap_or(now);
        self.issued.insert(token.clone(), (owner, expires));
        Answer::json(
            200,
            json!({"access_token": token, "expires_in": self.token_ttl, "restricted_to": [], "token_type": "bearer"}),
        )
    }

    fn list(&self, owner: &str, query: &str, n: u64) -> Answer {
        let query: HashMap<String, String> = form_pairs(query.as_bytes());
        let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
            None => 100,
            Some(Ok(l)) if (1..=1000).contains(&l) => l,
            Some(_) => {
                return error(
                    400,
                    "bad_request",
                    "Bad Request: limit must be 1 to 1000",
                    n,
                )
            }
        };
        let offset = match query.get("marker") {
            None => 0,
            Some(m) => match m
                .strip_prefix("fakemarker-")
                .and_then(|o| o.parse::<usize>().ok())
            {
                Some(o) => o,
                None => return error(400, "invalid_parameter", "Invalid value for marker", n),
            },
        };
        let limit = limit.min(self.page_size.max(1));
        if self.paging != Paging::Box {
            return self.broken_list(limit, offset);
        }
        let mine: Vec<&FakeWebhook> = self
            .webhooks
            .values()
            .filter(|w| w.owner == owner && !self.not_owned.contains(&w.target()))
            .collect();
        let end = offset.saturating_add(limit).min(mine.len());
        let entries: Vec<Value> = mine
            .get(offset.min(end)..end)
            .unwrap_or_default()
            .iter()
            .map(|w| w.mini())
            .collect();
        let next = (end < mine.len()).then(|| format!("fakemarker-{end}"));
        Answer::json(
            200,
            json!({"limit": limit, "next_marker": next, "prev_marker": null, "entries": entries}),
        )
    }

    /// A full page of made-up webhooks, and a marker that never leads to
    /// the end: always a new one ([`Paging::Endless`]), or round a loop of
    /// pages ([`Paging::Loop`]).
    fn broken_list(&self, limit: usize, offset: usize) -> Answer {
        let entries: Vec<Value> = (offset..offset.saturating_add(limit))
            .map(|i| {
                json!({
                    "id": 9_000_000_000_usize.saturating_add(i).to_string(),
                    "type": "webhook",
                    "target": {"id": i.saturating_add(1).to_string(), "type": "folder"},
                })
            })
            .collect();
        let next = match self.paging {
            Paging::Loop { pages } => {
                let page = offset.checked_div(limit).unwrap_or(0).saturating_add(1);
                page.checked_rem(pages.max(1))
                    .unwrap_or(0)
                    .saturating_mul(limit)
            }
            Paging::Box | Paging::Endless => offset.saturating_add(limit),
        };
        Answer::json(
            200,
            json!({"limit": limit, "next_marker": format!("fakemarker-{next}"), "prev_marker": null, "entries": entries}),
        )
    }

    fn create(&mut self, owner: &str, body: &[u8], n: u64) -> Answer {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return error(400, "bad_request", "Invalid JSON in request body", n);
        };
        let target_type = body["target"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let target_id = body["target"]["id"].as_str().unwrap_or_default().to_owned();
        let address = body["address"].as_str().unwrap_or_default().to_owned();
        let triggers: Vec<String> = body["triggers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(problem) = target_problem(&target_type, &target_id)
            .or_else(|| address_problem(&address))
            .or_else(|| (triggers.is_empty()).then_some("Bad Request: triggers is required"))
        {
            return error(400, "bad_request", problem, n);
        }
        if let Some(existing) = self
            .webhooks
            .values()
            .find(|w| w.owner == owner && w.target_type == target_type && w.target_id == target_id)
        {
            let message = format!(
                "Webhook:{} already exists on the specified target.",
                existing.id
            );
            return error(409, "conflict", &message, n);
        }
        if self.webhooks.values().filter(|w| w.owner == owner).count() >= self.cap {
            return error(
                400,
                "bad_request",
                "Bad Request: the limit of webhooks for this application and user is reached",
                n,
            );
        }
        let webhook = self.insert(owner, &target_type, &target_id, &address, triggers);
        Answer::json(201, webhook.full())
    }

    fn update(&mut self, owner: &str, id: &str, body: &[u8], n: u64) -> Answer {
        let Some(current) = self.find(owner, id).cloned() else {
            return error(404, "not_found", "Not Found", n);
        };
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return error(400, "bad_request", "Invalid JSON in request body", n);
        };
        let mut next = current.clone();
        if let Some(address) = body.get("address") {
            address
                .as_str()
                .unwrap_or_default()
                .clone_into(&mut next.address);
        }
        if let Some(triggers) = body.get("triggers") {
            next.triggers = triggers
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
        }
        if let Some(target) = body.get("target") {
            target["type"]
                .as_str()
                .unwrap_or_default()
                .clone_into(&mut next.target_type);
            target["id"]
                .as_str()
                .unwrap_or_default()
                .clone_into(&mut next.target_id);
        }
        if let Some(problem) = target_problem(&next.target_type, &next.target_id)
            .or_else(|| address_problem(&next.address))
            .or_else(|| {
                next.triggers
                    .is_empty()
                    .then_some("Bad Request: triggers is required")
            })
        {
            return error(400, "bad_request", problem, n);
        }
        if let Some(other) = self.webhooks.values().find(|w| {
            w.owner == owner
                && w.id != next.id
                && w.target_type == next.target_type
                && w.target_id == next.target_id
        }) {
            let message = format!(
                "Webhook:{} already exists on the specified target.",
                other.id
            );
            return error(409, "conflict", &message, n);
        }
        let full = next.full();
        if let Ok(key) = next.id.parse::<u64>() {
            self.webhooks.insert(key, next);
        }
        Answer::json(200, full)
    }

    pub(crate) fn insert(
        &mut self,
        owner: &str,
        target_type: &str,
        target_id: &str,
        address: &str,
        triggers: Vec<String>,
    ) -> FakeWebhook {
        self.next_id = self.next_id.saturating_add(1);
        let webhook = FakeWebhook {
            id: self.next_id.to_string(),
            owner: owner.to_owned(),
            target_type: target_type.to_owned(),
            target_id: target_id.to_owned(),
            address: address.to_owned(),
            triggers,
        };
        self.webhooks.insert(self.next_id, webhook.clone());
        webhook
    }
}
