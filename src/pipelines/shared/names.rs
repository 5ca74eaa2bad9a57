//! Resolving "by name" references. Pages name items and NPCs in text ("Mushroom (2,754,400)",
//! `npc: "Cpt Thomas"`); every such name is normalised, looked up, and — when nothing matches —
//! remembered for the run report instead of being dropped silently.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use diesel::QueryDsl;

use crate::db::schema::{items, npc_items, npcs};
use crate::db::{with_conn, Database, DbError};

/// The form names are compared in: trimmed, inner whitespace collapsed, curly quotes made
/// straight, lower case.
pub fn normalize(name: &str) -> String {
    let straight: String = name
        .chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{02bc}' | '`' | '\u{00b4}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            '\u{00a0}' => ' ',
            other => other,
        })
        .collect();
    straight.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Abbreviations names are written with, expanded before a second lookup.
const ABBREVIATIONS: [(&str, &str); 3] = [("cpt", "captain"), ("capt", "captain"), ("mr", "mister")];

/// Names of one kind of entity, looked up leniently.
#[derive(Debug, Default, Clone)]
pub struct NameIndex {
    exact: HashMap<String, i64>,
    /// Every normalised name, for the unique-prefix fallback.
    names: Vec<(String, i64)>,
}

impl NameIndex {
    pub fn new(entries: impl IntoIterator<Item = (String, i64)>) -> Self {
        let mut index = Self::default();
        for (name, id) in entries {
            let key = normalize(&name);
            index.exact.entry(key.clone()).or_insert(id);
            index.names.push((key, id));
        }
        index
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Exact (normalised) match first; then with abbreviations expanded; then a name this one
    /// is the unique word-prefix of ("Charles" for "Charles Horsington III").
    pub fn find(&self, name: &str) -> Option<i64> {
        let key = normalize(name);
        if key.is_empty() {
            return None;
        }
        if let Some(id) = self.exact.get(&key) {
            return Some(*id);
        }
        let expanded: Vec<&str> = key
            .split(' ')
            .map(|word| {
                let bare = word.trim_end_matches('.');
                ABBREVIATIONS.iter().find(|(short, _)| *short == bare).map_or(word, |(_, long)| *long)
            })
            .collect();
        let expanded = expanded.join(" ");
        if let Some(id) = self.exact.get(&expanded) {
            return Some(*id);
        }
        let prefix = format!("{expanded} ");
        let mut candidates = self.names.iter().filter(|(name, _)| name.starts_with(&prefix)).map(|(_, id)| *id);
        match (candidates.next(), candidates.next()) {
            (Some(id), None) => Some(id),
            _ => None,
        }
    }
}

/// What pipelines resolve names against: the stored items and NPCs.
#[derive(Debug, Default, Clone)]
pub struct Names {
    pub items: NameIndex,
    pub item_ids: BTreeSet<i64>,
    pub npcs: NameIndex,
    /// `npcs.user_id` → `npcs.id`.
    pub npc_user_ids: HashMap<i64, i64>,
    /// The API's preference lists: (NPC id, relation) → item ids.
    pub npc_items: BTreeMap<(i64, String), BTreeSet<i64>>,
    /// [`Names::digest`]s, computed at first use: every fan-out page's fingerprint takes one,
    /// and at 100,000 items each costs a sort and a hash of them all. Change the names before
    /// asking for a digest.
    pub(crate) digests: Digests,
}

/// The two digests of one set of names, each computed once.
#[derive(Debug, Default, Clone)]
pub(crate) struct Digests {
    items: std::sync::OnceLock<[u8; 32]>,
    all: std::sync::OnceLock<[u8; 32]>,
}

impl Names {
    pub async fn load(db: &Database) -> Result<Self, DbError> {
        let item_rows: Vec<(i64, String)> = with_conn!(db, readers, |conn| {
            items::table.select((items::id, items::name)).load(conn).await.map_err(DbError::Query)
        })?;
        let npc_rows: Vec<(i64, i64, String)> = with_conn!(db, readers, |conn| {
            npcs::table.select((npcs::id, npcs::user_id, npcs::name)).load(conn).await.map_err(DbError::Query)
        })?;
        let relation_rows: Vec<(i64, String, i64)> = with_conn!(db, readers, |conn| {
            npc_items::table
                .select((npc_items::npc_id, npc_items::relation, npc_items::item_id))
                .load(conn)
                .await
                .map_err(DbError::Query)
        })?;
        let mut npc_items: BTreeMap<(i64, String), BTreeSet<i64>> = BTreeMap::new();
        for (npc, relation, item) in relation_rows {
            npc_items.entry((npc, relation)).or_default().insert(item);
        }
        Ok(Self {
            item_ids: item_rows.iter().map(|(id, _)| *id).collect(),
            items: NameIndex::new(item_rows.into_iter().map(|(id, name)| (name, id))),
            npc_user_ids: npc_rows.iter().map(|(id, user_id, _)| (*user_id, *id)).collect(),
            npcs: NameIndex::new(npc_rows.into_iter().map(|(id, _, name)| (name, id))),
            npc_items,
            digests: Digests::default(),
        })
    }
}

impl Names {
    /// A digest of everything names resolve against. Part of each source's fingerprint, so a
    /// page read while an item was missing is read again once the item list has it.
    /// With `npcs` false, only the items count: a source that writes the NPCs must not see its
    /// own writes as a change of input.
    pub fn digest(&self, npcs: bool) -> [u8; 32] {
        let cached = if npcs { &self.digests.all } else { &self.digests.items };
        *cached.get_or_init(|| self.compute_digest(npcs))
    }

    fn compute_digest(&self, npcs: bool) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let mut items: Vec<&(String, i64)> = self.items.names.iter().collect();
        items.sort();
        for (name, id) in items {
            hasher.update(id.to_le_bytes());
            hasher.update(name.as_bytes());
        }
        if !npcs {
            return hasher.finalize().into();
        }
        let mut npc_names: Vec<&(String, i64)> = self.npcs.names.iter().collect();
        npc_names.sort();
        for (name, id) in npc_names {
            hasher.update(id.to_le_bytes());
            hasher.update(name.as_bytes());
        }
        let mut accounts: Vec<(&i64, &i64)> = self.npc_user_ids.iter().collect();
        accounts.sort();
        for (user, id) in accounts {
            hasher.update(user.to_le_bytes());
            hasher.update(id.to_le_bytes());
        }
        for ((npc, relation), ids) in &self.npc_items {
            hasher.update(npc.to_le_bytes());
            hasher.update(relation.as_bytes());
            for id in ids {
                hasher.update(id.to_le_bytes());
            }
        }
        hasher.finalize().into()
    }
}

/// Looks names and ids up and keeps a tally of what did not resolve, for the run report.
#[derive(Debug)]
pub struct Resolver<'a> {
    names: &'a Names,
    unresolved: BTreeMap<(&'static str, String), usize>,
    dangling: BTreeSet<(&'static str, i64)>,
}

impl<'a> Resolver<'a> {
    pub fn new(names: &'a Names) -> Self {
        Self { names, unresolved: BTreeMap::new(), dangling: BTreeSet::new() }
    }

    /// The id of the item called `name`, or `None` (and a note) when no item has that name.
    pub fn item(&mut self, name: &str) -> Option<i64> {
        let found = self.names.items.find(name);
        if found.is_none() {
            self.miss("item", name);
        }
        found
    }

    /// `id` itself; a note when no stored item has it (a newer upstream list than the items
    /// capture). The reference is kept: it resolves once the item list catches up.
    pub fn item_id(&mut self, id: i64) -> i64 {
        if !self.names.item_ids.contains(&id) {
            self.dangling.insert(("item", id));
        }
        id
    }

    /// The id of the NPC called `name` in `index` (aliases and unique prefixes accepted).
    pub fn npc_in(&mut self, index: &NameIndex, name: &str) -> Option<i64> {
        let found = index.find(name);
        if found.is_none() {
            self.miss("NPC", name);
        }
        found
    }

    /// The stored NPC whose player account is `user_id`.
    pub fn npc_user(&mut self, user_id: i64, name: &str) -> Option<i64> {
        let found = self.names.npc_user_ids.get(&user_id).copied();
        if found.is_none() {
            self.miss("NPC", &format!("{name} (user {user_id})"));
        }
        found
    }

    pub fn miss(&mut self, kind: &'static str, name: &str) {
        *self.unresolved.entry((kind, name.trim().to_owned())).or_default() += 1;
    }

    pub fn unresolved_count(&self) -> usize {
        self.unresolved.values().sum()
    }

    /// One note per kind of miss, listing the names (and how often each occurred).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let mut by_kind: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((kind, name), count) in &self.unresolved {
            let shown = if *count > 1 { format!("{name:?} ({count}×)") } else { format!("{name:?}") };
            by_kind.entry(kind).or_default().push(shown);
        }
        for (kind, names) in by_kind {
            notes.push(format!("{} {kind} names did not resolve (kept unlinked): {}", names.len(), names.join(", ")));
        }
        let mut dangling: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (kind, id) in &self.dangling {
            dangling.entry(kind).or_default().push(id.to_string());
        }
        for (kind, ids) in dangling {
            notes.push(format!(
                "{} {kind} ids are not in the stored {kind} list yet (kept; they resolve once it catches up): {}",
                ids.len(),
                ids.join(", ")
            ));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npcs() -> NameIndex {
        NameIndex::new([
            ("Charles Horsington III".to_owned(), 1),
            ("Captain Thomas".to_owned(), 2),
            ("Thomas".to_owned(), 3),
            ("Mummy".to_owned(), 4),
        ])
    }

    // Aliases the API uses resolve: short forms and abbreviations.
    #[test]
    fn aliases_and_prefixes_resolve() {
        let index = npcs();
        assert_eq!(index.find("Charles"), Some(1));
        assert_eq!(index.find("Cpt Thomas"), Some(2));
        assert_eq!(index.find("  thomas "), Some(3), "exact wins over prefix");
        assert_eq!(index.find("Nobody"), None);
        assert_eq!(index.find(""), None);
    }

    // Curly and straight apostrophes, case and spacing do not matter.
    #[test]
    fn normalisation_ignores_quotes_case_and_spacing() {
        let items = NameIndex::new([("Holger's Mushroom Stew".to_owned(), 9)]);
        assert_eq!(items.find("Holger\u{2019}s  mushroom stew"), Some(9));
        assert_eq!(normalize("\u{00a0}A\u{2018}b\u{201d} "), "a'b\"");
    }

    // Misses are counted and reported by kind, never dropped silently.
    #[test]
    fn misses_are_reported() {
        let names = Names { items: NameIndex::new([("Apple".to_owned(), 1)]), ..Names::default() };
        let mut resolver = Resolver::new(&names);
        assert_eq!(resolver.item("apple"), Some(1));
        assert_eq!(resolver.item("Pear"), None);
        assert_eq!(resolver.item("Pear"), None);
        assert_eq!(resolver.item_id(77), 77);
        let notes = resolver.notes();
        assert!(notes[0].contains("1 item names did not resolve") && notes[0].contains("\"Pear\" (2×)"), "{notes:?}");
        assert!(notes[1].contains("77"), "{notes:?}");
    }
}
