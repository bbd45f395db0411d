//! [`DeliveryIds`]: UUID-shaped `BOX-DELIVERY-ID` values.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of `BOX-DELIVERY-ID` values shaped like Box's (a version-4 UUID,
/// e.g. `f96bb54b-ee16-4fc5-aa65-8c2d9e5b546f`).
///
/// The ids look random but are a pure function of the seed and the call
/// count, so a seeded source repeats exactly across runs. Within one source a
/// repeat is as unlikely as between random UUIDs (each half is a bijective mix
/// of the counter). Shareable between tasks: [`next_id`](Self::next_id) takes
/// `&self`.
///
/// ```
/// use boxhook::runtime::send::DeliveryIds;
///
/// let ids = DeliveryIds::seeded(7);
/// let first = ids.next_id();
/// assert_eq!(first.len(), 36);
/// assert_eq!(&first[14..15], "4"); // UUID version 4
/// assert_ne!(ids.next_id(), first);
/// assert_eq!(DeliveryIds::seeded(7).next_id(), first); // deterministic
/// ```
#[derive(Debug)]
pub struct DeliveryIds {
    seed: u64,
    counter: AtomicU64,
}

impl DeliveryIds {
    /// A deterministic source: the same seed yields the same ids in the same order.
    #[must_use]
    pub const fn seeded(seed: u64) -> Self {
        Self {
            seed,
            counter: AtomicU64::new(0),
        }
    }

    /// A source seeded from the process's random hash keys: different in
    /// every run, with no clock involved.
    ///
    /// ```
    /// use boxhook::runtime::send::DeliveryIds;
    /// assert_ne!(DeliveryIds::random().next_id(), DeliveryIds::random().next_id());
    /// ```
    #[must_use]
    pub fn random() -> Self {
        Self::seeded(RandomState::new().hash_one(0x0062_6f78_686f_6f6b_u64))
    }

    /// The next id.
    pub fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format_uuid(
            mix(self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            mix(!self.seed ^ n.wrapping_mul(0xd1b5_4a32_d192_ed03)),
        )
    }
}

impl Iterator for DeliveryIds {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        Some(self.next_id())
    }
}

/// The `SplitMix64` finaliser: a bijection on `u64` that scatters nearby inputs.
pub(crate) const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn format_uuid(hi: u64, lo: u64) -> String {
    let hi = (hi & !0xf000) | 0x4000; // version 4
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let ids = DeliveryIds::seeded(0);
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = ids.next_id();
            let groups: Vec<_> = id.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
            assert!(id
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
            assert!(seen.insert(id));
        }
    }
}
