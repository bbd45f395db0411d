//! The five webhook endpoints of Box's API.

use std::collections::HashMap;

use http::Method;
use serde::de::DeserializeOwned;

use crate::auth::form_encode;
use crate::client::{Answer, BoxClient};
use crate::desired::MAX_WEBHOOKS;
use crate::error::Error;
use crate::model::{NewWebhook, Target, Webhook, WebhookMini, WebhookPage, WebhookUpdate};

/// The page size asked for when listing: Box's maximum.
pub const LIST_PAGE_LIMIT: u32 = 1000;

/// The most webhooks [`BoxClient::list`] collects before it stops with an
/// error: ten times Box's cap of [`MAX_WEBHOOKS`](crate::MAX_WEBHOOKS) per
/// app and user. An honest list never comes near it, a raised cap has room,
/// and a list that never ends stops at about a megabyte of entries.
///
/// ```
/// assert_eq!(boxhook_admin::MAX_LIST_ENTRIES, 10_000);
/// ```
pub const MAX_LIST_ENTRIES: usize = 10 * crate::desired::MAX_WEBHOOKS;

/// The most pages [`BoxClient::list`] requests before it stops with an
/// error. Box's whole list fits in one page of [`LIST_PAGE_LIMIT`]; even at
/// Box's default page size of 100, [`MAX_LIST_ENTRIES`] fit in 100 pages. An
/// API answering a few entries a page, each with a next marker, is stopped
/// after 100 requests.
///
/// ```
/// assert_eq!(boxhook_admin::MAX_LIST_PAGES, 100);
/// ```
pub const MAX_LIST_PAGES: usize = 100;

/// The longest `next_marker` followed, in bytes: Box's are a few dozen
/// characters, and each one seen is kept to detect a loop.
const MAX_MARKER_LEN: usize = 2048;

/// One page of the webhook list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The webhooks on this page (id and target only).
    pub entries: Vec<WebhookMini>,
    /// The marker of the next page; `None` on the last one.
    pub next_marker: Option<String>,
}

fn decode<T: DeserializeOwned>(answer: &Answer, what: &'static str) -> Result<T, Error> {
    serde_json::from_slice(&answer.body).map_err(|err| Error::Decode {
        what,
        detail: err.to_string(),
    })
}

fn check_id(id: &str) -> Result<&str, Error> {
    if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(Error::Config(format!(
            "webhook id {id:?} is not a Box id (digits only); `boxhook webhooks list` shows them"
        )))
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|err| Error::Config(err.to_string()))
}

impl BoxClient {
    /// `GET /2.0/webhooks`: one page of at most `limit` (1 to 1000)
    /// webhooks, from `marker` (`None`: the first page).
    pub async fn list_page(&self, marker: Option<&str>, limit: u32) -> Result<Page, Error> {
        let mut path = format!("/2.0/webhooks?limit={}", limit.clamp(1, LIST_PAGE_LIMIT));
        if let Some(marker) = marker {
            path.push_str("&marker=");
            path.push_str(&form_encode(marker));
        }
        let page: WebhookPage = decode(&self.api(Method::GET, &path, None).await?, "webhook list")?;
        Ok(Page {
            entries: page.entries,
            next_marker: page.next_marker.filter(|m| !m.is_empty()),
        })
    }

    /// Every webhook of this app and user, following the markers (id and
    /// target only: the list endpoint returns no more).
    ///
    /// Bounded whatever the API answers: past [`MAX_LIST_ENTRIES`] webhooks
    /// or [`MAX_LIST_PAGES`] pages, at a `next_marker` an earlier page
    /// already gave (a loop), or at a marker over 2 KiB, it stops with an
    /// [`Error::Decode`] saying which.
    pub async fn list(&self) -> Result<Vec<WebhookMini>, Error> {
        let stop = |detail: String| Error::Decode {
            what: "webhook list",
            detail,
        };
        let mut all = Vec::new();
        // Each marker followed, with the page that gave it.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut marker: Option<String> = None;
        for number in 1..=MAX_LIST_PAGES {
            let page = self.list_page(marker.as_deref(), LIST_PAGE_LIMIT).await?;
            if all.len().saturating_add(page.entries.len()) > MAX_LIST_ENTRIES {
                return Err(stop(format!(
                    "page {number} would bring the list past {MAX_LIST_ENTRIES} webhooks; Box \
                     keeps at most {MAX_WEBHOOKS} per app and user, so this API does not page \
                     as Box's does: stopped"
                )));
            }
            let last = page.entries.is_empty();
            all.extend(page.entries);
            let Some(next) = page.next_marker.filter(|_| !last) else {
                return Ok(all);
            };
            if next.len() > MAX_MARKER_LEN {
                return Err(stop(format!(
                    "page {number} gives a next_marker of {} bytes, and Box's are a few dozen: \
                     stopped",
                    next.len()
                )));
            }
            if let Some(earlier) = seen.insert(next.clone(), number) {
                return Err(stop(format!(
                    "page {number} gives the same next_marker as page {earlier}, so the pages \
                     go round in a loop: stopped"
                )));
            }
            marker = Some(next);
        }
        Err(stop(format!(
            "still a next page after {MAX_LIST_PAGES} pages ({} webhooks); Box keeps at most \
             {MAX_WEBHOOKS} webhooks per app and user, so this API does not page as Box's \
             does: stopped",
            all.len()
        )))
    }

    /// Every webhook with its address and triggers: [`list`](Self::list),
    /// then `GET /2.0/webhooks/{id}` for each.
    pub async fn list_full(&self) -> Result<Vec<Webhook>, Error> {
        let mut full = Vec::new();
        for mini in self.list().await? {
            full.extend(self.get_if_exists(&mini.id).await?);
        }
        Ok(full)
    }

    /// [`get`](Self::get), with `None` for a webhook that is gone (404):
    /// deleted between a list and the read.
    pub(crate) async fn get_if_exists(&self, id: &str) -> Result<Option<Webhook>, Error> {
        match self.get(id).await {
            Ok(webhook) => Ok(Some(webhook)),
            Err(Error::Api(err)) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `GET /2.0/webhooks/{id}`.
    pub async fn get(&self, id: &str) -> Result<Webhook, Error> {
        let path = format!("/2.0/webhooks/{}", check_id(id)?);
        decode(&self.api(Method::GET, &path, None).await?, "webhook")
    }

    /// `POST /2.0/webhooks`. A 409 means the target has a webhook from this
    /// app and user already ([`ApiError::is_conflict`](crate::ApiError::is_conflict)).
    pub async fn create(&self, new: &NewWebhook) -> Result<Webhook, Error> {
        let body = json(new)?;
        decode(
            &self.api(Method::POST, "/2.0/webhooks", Some(body)).await?,
            "created webhook",
        )
    }

    /// `PUT /2.0/webhooks/{id}` with the fields that change.
    pub async fn update(&self, id: &str, update: &WebhookUpdate) -> Result<Webhook, Error> {
        let path = format!("/2.0/webhooks/{}", check_id(id)?);
        let body = json(update)?;
        decode(
            &self.api(Method::PUT, &path, Some(body)).await?,
            "updated webhook",
        )
    }

    /// `DELETE /2.0/webhooks/{id}`.
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        let path = format!("/2.0/webhooks/{}", check_id(id)?);
        self.api(Method::DELETE, &path, None).await.map(|_| ())
    }

    /// The webhook of this app and user on `target`, if any: the list, then
    /// one `GET` for the match.
    pub async fn find_on_target(&self, target: &Target) -> Result<Option<Webhook>, Error> {
        let Some(mini) = self.list().await?.into_iter().find(|w| &w.target == target) else {
            return Ok(None);
        };
        self.get_if_exists(&mini.id).await
    }
}
