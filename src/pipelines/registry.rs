//! The one list of pipelines this build ships.
//!
//! Everything that needs to know which pipelines exist reads [`REGISTRY`]: the names ([`KNOWN`]),
//! default schedules and time zones, the order `run all` uses, the entities `count` knows, the
//! dashboard's and status's lists, the builder of each supervised chain, and the sample pages the
//! embedded upstream and `hayloft demo-data` serve ([`sample_pages`]). Adding a source is
//! its module, its migrations and one entry here; a name without an entry cannot be run, built
//! or configured, because nothing else lists names. Its GraphQL entities join [`EntityQuery`]
//! below, the one list the query root is made of.

use std::rc::Rc;
use std::sync::Arc;

use hayloft_actors::pipeline::{PipelineDeps, PipelineHandle};
use hayloft_actors::supervisor::ChildSpec;

use super::cards::{CardCombo, CardComboCard};
use super::community::CommunityGoal;
use super::exchange::ExchangeOffer;
use super::gallery::ProfileBackground;
use super::item_pages::{ItemDetail, ItemSource};
use super::items::rows::{Item, LocksmithContent, RecipeIngredient, SeedCrop, WellOutput};
use super::locations::{Location, LocationDrop};
use super::npc_pages::NpcProfile;
use super::npcs::{Npc, NpcItem, NpcReward, NpcRewardItem};
use super::passwords::{Password, PasswordReward};
use super::pets::{Pet, PetItem};
use super::quests::{Quest, QuestRequiredItem, QuestRewardItem, Questline};
use super::shared::page_worker::{PageHandler, SourcePages};
use super::shared::settings::MAX_DEMO_COPIES;
use super::shared::source::{self, Source};
use super::shared::BuildParts;
use super::tent::TentOffer;
use super::tower::{TowerLevel, TowerReward};
use super::updates::{GameUpdate, GameUpdateItem};
use super::{
    cards, community, demo, exchange, gallery, item_pages, items, locations, npc_pages, npcs, passwords, pets, quests,
    tent, tower, updates,
};
use crate::front_doors::graphql::entity::entity_schema;
use crate::import::rows::{self as history, ManualProduction, PasswordClue, SkillLevelReward};
use crate::upstream::demo_pages::{SamplePage, SamplePages, SampleRequest, SampleSource};

/// Builds one pipeline's supervised extractor → transformer → loader chain.
pub type BuildFn = fn(&BuildParts<'_>, PipelineDeps) -> (ChildSpec, PipelineHandle);

/// Builds how a node works on one fan-out source's pages (see [`Source::FANS_OUT`]).
pub type PagesFn = fn(&BuildParts<'_>) -> Rc<dyn PageHandler>;

/// A table a pipeline loads, under the name `count` knows it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entity {
    /// What `count` is asked for (`npc-items`).
    pub name: &'static str,
    /// The table holding its rows.
    pub table: &'static str,
    /// What it counts, for help texts.
    pub about: &'static str,
}

/// One pipeline.
#[derive(Clone, Copy)]
pub struct PipelineEntry {
    pub name: &'static str,
    /// Its schedule when the configuration names none.
    pub default_schedule: &'static str,
    /// The time zone its default schedule is meant in, when it is not the server's.
    pub default_time_zone: Option<&'static str>,
    /// Pipelines whose stored rows it reads (to resolve names, or to fan out): they run first
    /// in `run all`, and must come earlier in [`REGISTRY`].
    pub depends_on: &'static [&'static str],
    /// The tables it loads, first the one its rows hang from.
    pub entities: &'static [Entity],
    pub build: BuildFn,
    /// A fan-out source's page handler, for every node's page worker.
    pub pages: Option<PagesFn>,
    /// Its pages in the generated sample upstream; `None` for a pipeline that fetches no page
    /// of its own there.
    pub sample_pages: Option<SampleSource>,
}

impl std::fmt::Debug for PipelineEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineEntry").field("name", &self.name).field("depends_on", &self.depends_on).finish()
    }
}

const fn entity(name: &'static str, table: &'static str, about: &'static str) -> Entity {
    Entity { name, table, about }
}

/// The entry of a page-based source: name, schedule and builder come from its [`Source`] impl.
const fn source_entry<S: Source + Default>(
    depends_on: &'static [&'static str],
    entities: &'static [Entity],
) -> PipelineEntry {
    PipelineEntry {
        name: S::NAME,
        default_schedule: S::DEFAULT_SCHEDULE,
        default_time_zone: S::DEFAULT_TIME_ZONE,
        depends_on,
        entities,
        build: build_source::<S>,
        pages: if S::FANS_OUT { Some(source_pages::<S>) } else { None },
        sample_pages: Some(SampleSource { requests: sample_requests::<S>, page: sample_page::<S> }),
    }
}

fn build_source<S: Source + Default>(parts: &BuildParts<'_>, deps: PipelineDeps) -> (ChildSpec, PipelineHandle) {
    source::build(Arc::new(S::default()), parts, deps)
}

fn source_pages<S: Source + Default>(parts: &BuildParts<'_>) -> Rc<dyn PageHandler> {
    Rc::new(SourcePages::new(Arc::new(S::default()), parts.upstream.clone(), parts.db.clone(), parts.events.clone()))
}

fn sample_requests<S: Source + Default>(scale: u32) -> Vec<String> {
    S::default().sample_requests(scale)
}

fn sample_page<S: Source + Default>(request: &SampleRequest) -> Option<SamplePage> {
    S::default().sample_page(request)
}

/// Every pipeline, in the order `run all` uses: items first (everything refers to them), NPCs
/// before the NPC pages merged into them, locations before item pages naming them.
pub const REGISTRY: [PipelineEntry; 16] = [
    PipelineEntry {
        name: items::NAME,
        default_schedule: items::DEFAULT_SCHEDULE,
        default_time_zone: None,
        depends_on: &[],
        entities: &[
            entity("items", "items", "game items"),
            entity("recipes", "recipe_ingredients", "crafting and cooking ingredients"),
            entity("locksmith", "locksmith_contents", "what openable items contain"),
            entity("seeds", "seed_crops", "crops each seed can yield"),
            entity("well", "wishing_well_outputs", "wishing-well outputs"),
        ],
        build: items::build,
        pages: None,
        // The item API's sample is the generated item list itself, which the embedded upstream
        // serves at any scale and every other sample page names.
        sample_pages: None,
    },
    source_entry::<npcs::Npcs>(
        &[items::NAME],
        &[
            entity("npcs", "npcs", "townsfolk"),
            entity("npc-items", "npc_items", "items NPCs give, like, love, hate or can be given"),
            entity("npc-rewards", "npc_rewards", "NPC friendship rewards"),
        ],
    ),
    source_entry::<npc_pages::NpcPages>(
        &[items::NAME, npcs::NAME],
        &[entity("npc-profiles", "npc_profiles", "NPC friendship levels and staff details")],
    ),
    source_entry::<tower::Tower>(
        &[items::NAME],
        &[
            entity("tower", "tower_levels", "tower levels"),
            entity("tower-rewards", "tower_rewards", "tower item rewards"),
        ],
    ),
    source_entry::<locations::Locations>(
        &[items::NAME],
        &[
            entity("locations", "locations", "fishing and exploring locations"),
            entity("drops", "location_drops", "items found at each location"),
        ],
    ),
    source_entry::<item_pages::ItemPages>(
        &[items::NAME, locations::NAME],
        &[
            entity("item-details", "item_details", "item-page details"),
            entity("item-sources", "item_sources", "locations item pages list"),
        ],
    ),
    source_entry::<community::Community>(
        &[items::NAME],
        &[entity("community", "community_goals", "community-center goals by day")],
    ),
    source_entry::<exchange::Exchange>(
        &[items::NAME],
        &[entity("exchange", "exchange_offers", "exchange-center offers seen")],
    ),
    source_entry::<cards::Cards>(&[], &[entity("cards", "card_combos", "House of Cards combinations")]),
    source_entry::<tent::Tent>(&[items::NAME], &[entity("tent", "tent_offers", "Borgen's tent offers by week")]),
    source_entry::<updates::Updates>(&[items::NAME], &[entity("updates", "game_updates", "game update posts")]),
    source_entry::<passwords::Passwords>(
        &[items::NAME],
        &[entity("passwords", "passwords", "passwords and their rewards")],
    ),
    source_entry::<gallery::Gallery>(&[], &[entity("backgrounds", "profile_backgrounds", "profile backgrounds")]),
    source_entry::<pets::Pets>(
        &[items::NAME],
        &[entity("pets", "pets", "pets"), entity("pet-items", "pet_items", "items pets bring back, by pet level")],
    ),
    source_entry::<quests::Quests>(
        &[items::NAME, npcs::NAME],
        &[
            entity("quests", "quests", "quests"),
            entity("questlines", "questlines", "quest lines read from quest titles"),
            entity("quest-items", "quest_required_items", "items quests ask for"),
            entity("quest-rewards", "quest_reward_items", "items quests give"),
        ],
    ),
    PipelineEntry {
        name: demo::NAME,
        default_schedule: demo::DEFAULT_SCHEDULE,
        default_time_zone: None,
        depends_on: &[],
        entities: &[entity("demo", "demo_records", "rows loaded by the demo pipeline")],
        build: demo::build,
        pages: None,
        // It generates its rows and fetches nothing.
        sample_pages: None,
    },
];

entity_schema! {
    /// Every entity's root fields, in the schema's order: a source's entities, then the next
    /// source's. `+ [sources]` names the sources that add relations to an entity (their
    /// `links!`), in the order the entity's fields list them.
    pub struct EntityQuery {
        Item + [npcs, locations, tower, passwords, community, exchange, cards, tent, updates, gallery, item_pages, quests, pets, history],
        RecipeIngredient,
        LocksmithContent,
        SeedCrop,
        WellOutput,
        Npc,
        NpcItem,
        NpcReward,
        NpcRewardItem,
        NpcProfile,
        TowerLevel,
        TowerReward,
        Location + [item_pages],
        LocationDrop,
        CommunityGoal,
        ExchangeOffer,
        CardCombo,
        CardComboCard,
        TentOffer,
        GameUpdate,
        GameUpdateItem,
        Password + [history],
        PasswordReward,
        ProfileBackground,
        ItemDetail,
        ItemSource,
        Quest,
        Questline,
        QuestRequiredItem,
        QuestRewardItem,
        Pet,
        PetItem,
        SkillLevelReward,
        ManualProduction,
        PasswordClue,
    }
}

/// Every pipeline name, in [`REGISTRY`] order.
pub const KNOWN: [&str; REGISTRY.len()] = {
    let mut names = [""; REGISTRY.len()];
    let mut index = 0;
    while index < REGISTRY.len() {
        names[index] = REGISTRY[index].name;
        index += 1;
    }
    names
};

const fn same(left: &str, right: &str) -> bool {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    if left.len() != right.len() {
        return false;
    }
    let mut index = 0;
    while index < left.len() {
        if left[index] != right[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// Names are unique and every dependency comes earlier, so `run all` in registry order loads
/// what a pipeline reads before it runs. Checked while compiling: a wrong entry does not build.
const _: () = {
    let mut index = 0;
    while index < REGISTRY.len() {
        let entry = &REGISTRY[index];
        let mut other = 0;
        while other < index {
            assert!(!same(REGISTRY[other].name, entry.name), "two registry entries share a name");
            other += 1;
        }
        let mut dependency = 0;
        while dependency < entry.depends_on.len() {
            let mut found = false;
            let mut earlier = 0;
            while earlier < index {
                found |= same(REGISTRY[earlier].name, entry.depends_on[dependency]);
                earlier += 1;
            }
            assert!(found, "a pipeline depends on one that is not listed before it");
            dependency += 1;
        }
        index += 1;
    }
};

/// The entry named `name`.
pub fn entry(name: &str) -> Option<&'static PipelineEntry> {
    REGISTRY.iter().find(|entry| entry.name == name)
}

/// The registered name a person meant: any case, `-` for `_` (`Item-Pages` is `item_pages`),
/// as every front door accepts it.
pub fn named(name: &str) -> Option<&'static str> {
    named_among(name, KNOWN)
}

/// [`named`], also knowing the first `copies` copies of the demo pipeline (`demo_3`).
pub fn named_in(name: &str, copies: u32) -> Option<&'static str> {
    named_among(name, KNOWN.into_iter().chain(demo_copy_names().iter().take(copies as usize).copied()))
}

/// [`named`] among the names `known` (those one configuration runs).
pub fn named_among(name: &str, known: impl IntoIterator<Item = &'static str>) -> Option<&'static str> {
    let wanted = name.trim().to_ascii_lowercase().replace('-', "_");
    known.into_iter().find(|known| *known == wanted)
}

/// The names copies of the demo pipeline run under, made once: a pipeline's name is a
/// `&'static str` everywhere, and these are the only names not known when the program is built.
fn demo_copy_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        (1..=MAX_DEMO_COPIES).map(|index| &*Box::leak(format!("{}_{index}", demo::NAME).into_boxed_str())).collect()
    })
}

/// Every pipeline one process runs: the [`REGISTRY`], with `copies` copies of the demo
/// pipeline right after it (see [`super::shared::settings::PipelineConfig::copies`]; at most [`MAX_DEMO_COPIES`]). A
/// copy builds like the demo and lists no entity of its own: its rows are the demo's.
pub fn with_demo_copies(copies: u32) -> Vec<PipelineEntry> {
    let mut entries = Vec::with_capacity(REGISTRY.len() + copies as usize);
    for entry in &REGISTRY {
        entries.push(*entry);
        if entry.name == demo::NAME {
            entries.extend(demo_copy_names().iter().take(copies as usize).map(|name| PipelineEntry {
                name,
                entities: &[],
                ..*entry
            }));
        }
    }
    entries
}

/// The known name nearest to a mistyped one, when it is close enough to be a typo.
pub fn nearest<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    known
        .into_iter()
        .map(|name| (hayloft_actors::command::edit_distance(&typed, name), name))
        .filter(|(distance, name)| *distance <= 2 && *distance < name.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// The tables only `hayloft import` writes (see [`crate::import`]): no pipeline loads them.
pub const IMPORTED: [Entity; 3] = [
    entity("skill-rewards", "skill_level_rewards", "items skill levels give (imported)"),
    entity("manual-productions", "manual_productions", "how items are produced other than by crafting (imported)"),
    entity("password-clues", "password_clues", "password clues and events (imported)"),
];

/// Every entity the pipelines load, in registry order, then those only imports write.
pub fn entities() -> impl Iterator<Item = &'static Entity> {
    REGISTRY.iter().flat_map(|entry| entry.entities.iter()).chain(IMPORTED.iter())
}

/// Every pipeline's sample pages, in registry order: what the embedded upstream answers besides
/// the item API, and what `hayloft demo-data` writes beside it.
pub fn sample_pages() -> SamplePages {
    SamplePages::new(REGISTRY.iter().filter_map(|entry| entry.sample_pages))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipelines::shared::names::{NameIndex, Names};
    use crate::pipelines::shared::source::{parse_pages, Page};
    use crate::pipelines::shared::table::Dataset;
    use crate::upstream::demo_data::{items_body, ITEMS_PER_BLOCK};

    // Entity names are unique across pipelines, so `count <entity>` means one table.
    #[test]
    fn entity_names_are_unique() {
        let mut names: Vec<_> = entities().map(|entity| entity.name).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all);
    }

    // Every entity names a table the schema declares.
    #[test]
    fn entities_name_real_tables() {
        let schema = include_str!("../db/schema.rs");
        for entity in entities() {
            assert!(schema.contains(&format!("    {} (", entity.table)), "{} has no table", entity.table);
        }
    }

    // Every column an entity declares is a field of its GraphQL type under the name the
    // projection maps it from, so a selected field is never missed.
    #[test]
    fn entity_columns_are_the_fields_of_their_types() {
        let schema = crate::front_doors::graphql::build(None, None, &Default::default());
        for (type_name, columns) in GRAPHQL_ENTITIES {
            let query = format!("{{ __type(name: \"{type_name}\") {{ fields {{ name }} }} }}");
            let response = futures::executor::block_on(schema.execute(query));
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            let data = response.data.into_json().unwrap_or_default();
            let fields: Vec<&str> = data["__type"]["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|field| field["name"].as_str())
                .collect();
            for column in *columns {
                assert!(
                    fields.iter().any(|field| crate::front_doors::graphql::entity::names_match(field, column)),
                    "{type_name}.{column} is not among {fields:?}"
                );
            }
        }
    }

    // docs/adding-a-source.md names files that exist and the declarations they hold, so its
    // list of what a new source touches stays true.
    #[test]
    fn the_adding_a_source_guide_names_real_files() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let guide = std::fs::read_to_string(root.join("docs/adding-a-source.md")).unwrap();
        let paths: Vec<&str> = guide
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|quoted| ["src/", "tests/", "migrations/"].iter().any(|top| quoted.starts_with(top)))
            .filter(|quoted| !quoted.contains('<'))
            .collect();
        assert!(paths.len() >= 5, "{paths:?}");
        for path in paths {
            assert!(root.join(path).exists(), "docs/adding-a-source.md names {path}, which does not exist");
        }
        let registry = include_str!("registry.rs");
        for declared in ["pub struct EntityQuery", "source_entry::<"] {
            assert!(guide.contains(declared.trim_start_matches("pub struct ")) && registry.contains(declared));
        }
        let tower = include_str!("tower.rs");
        for macro_name in ["entity! {", "links! {", "stored_table!("] {
            assert!(guide.contains(macro_name) && tower.contains(macro_name), "{macro_name}");
        }
    }

    // The tent opens on Wednesdays in game time; every other default is the server's zone.
    #[test]
    fn only_the_tent_has_its_own_time_zone() {
        let zoned: Vec<_> = REGISTRY.iter().filter(|entry| entry.default_time_zone.is_some()).map(|e| e.name).collect();
        assert_eq!(zoned, [tent::NAME]);
        assert_eq!(entry(tent::NAME).and_then(|entry| entry.default_time_zone), Some("America/Chicago"));
    }

    // Every sample request has a page, which only the source listing it answers, in a file of
    // its own.
    #[test]
    fn every_sample_page_has_one_source_and_a_distinct_file() {
        let samples = sample_pages();
        let requests: Vec<String> = samples.sources().iter().flat_map(|source| (source.requests)(1)).collect();
        let pages = samples.all(1);
        assert_eq!(pages.len(), 15 + locations::SAMPLE_LOCATIONS.len() + ITEMS_PER_BLOCK);
        // A scaled capture has an item page for every item.
        assert_eq!(samples.all(3).len(), pages.len() + 2 * ITEMS_PER_BLOCK);
        assert_eq!(pages.len(), requests.len(), "every listed request has a page");
        for request in &requests {
            let parsed = SampleRequest::parse(request);
            let answering = samples.sources().iter().filter(|source| (source.page)(&parsed).is_some()).count();
            assert_eq!(answering, 1, "{request} is answered by {answering} sources");
        }
        let files: std::collections::BTreeSet<_> = pages.iter().map(|(route, _)| route.file.clone()).collect();
        assert_eq!(files.len(), pages.len());
        // Ids between two blocks of the generated item list have no item, nor a page.
        assert!(samples.page("/item.php?id=1180").is_none());
        assert!(samples.page("/item.php?id=99999").is_some(), "an item of a scaled list has its page");
        assert!(samples.page("/location.php?type=explore&id=1").is_some());
    }

    fn sample(request: &str) -> Page {
        let page = sample_pages().page(request).unwrap();
        Page { request: request.to_owned(), url: request.to_owned(), body: page.body.into() }
    }

    // Every source parses its sample pages, and every name in them resolves to a sample item:
    // a fresh server on the embedded data loads every pipeline without a note.
    #[test]
    fn sample_pages_parse_and_resolve() {
        let items = items::transform::parse(&items_body(1), "sample").unwrap();
        let mut names = Names {
            item_ids: items.items.iter().map(|item| item.id).collect(),
            items: NameIndex::new(items.items.iter().map(|item| (item.name.clone(), item.id))),
            ..Names::default()
        };
        for (id, user_id, _) in npcs::SAMPLE_NPCS {
            names.npc_user_ids.insert(user_id, id);
        }
        let check = |dataset: Dataset| {
            assert!(dataset.table_rows().iter().all(|(_, rows)| *rows > 0), "{:?}", dataset.table_rows());
            assert!(dataset.notes.is_empty(), "{:?}", dataset.notes);
        };
        let one = |request: &str| vec![sample(request)];
        let npcs = parse_pages(&npcs::Npcs, one("/api.php?method=npcs"), names.clone()).unwrap();
        for row in npcs.rows_of("npc_items") {
            let key = (row["npc_id"].as_i64().unwrap(), row["relation"].as_str().unwrap().to_owned());
            names.npc_items.entry(key).or_default().insert(row["item_id"].as_i64().unwrap());
        }
        check(npcs);
        check(parse_pages(&tower::Tower, one("/api.php?method=tower"), names.clone()).unwrap());
        let details = locations::SAMPLE_LOCATIONS
            .iter()
            .map(|(kind, id, _, _)| sample(&format!("/location.php?type={kind}&id={id}")));
        // The end of a fan-out run: the list's locations, and no drops of its own (the pages
        // wrote theirs).
        let list = parse_pages(&locations::Locations, one("/locations.php"), names.clone()).unwrap();
        assert_eq!(list.table_rows(), [("locations", locations::SAMPLE_LOCATIONS.len()), ("location_drops", 0)]);
        // A fan-out source's pages are parsed one by one, by whichever node takes them.
        for page in details {
            check(locations::Locations.parse_fanned(&page, &names).unwrap());
        }
        check(parse_pages(&community::Community, one("/comm.php"), names.clone()).unwrap());
        check(parse_pages(&exchange::Exchange, one("/exchange.php"), names.clone()).unwrap());
        check(parse_pages(&cards::Cards, one("/manage_hoc.php"), names.clone()).unwrap());
        check(parse_pages(&tent::Tent, one("/tent.php"), names.clone()).unwrap());
        check(
            parse_pages(&updates::Updates, vec![sample("/about.php?all=1"), sample("/about.php")], names.clone())
                .unwrap(),
        );
        check(parse_pages(&passwords::Passwords, one("/popwlog.php"), names.clone()).unwrap());
        check(parse_pages(&gallery::Gallery, one("/gallery.php"), names.clone()).unwrap());
        for id in 11..31 {
            let dataset = item_pages::ItemPages.parse_fanned(&sample(&format!("/item.php?id={id}")), &names).unwrap();
            // Every item page has its details; only some list a location.
            assert!(dataset.table_rows()[0].1 == 1 && dataset.notes.is_empty(), "{:?}", dataset.table_rows());
        }
        check(
            parse_pages(&npc_pages::NpcPages, vec![sample("/npclevels.php"), sample("/manage_npc.php")], names)
                .unwrap(),
        );
    }

    /// A query root over the real `Item` type that records the projections a list and a
    /// nested relation compute, the way the generated resolvers compute them.
    mod projection {
        use std::sync::{Arc, Mutex};

        use async_graphql::connection::Connection;
        use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Request, Schema};

        use super::super::{Item, RecipeIngredient};
        use crate::front_doors::graphql::entity::Projection;
        use crate::front_doors::graphql::lists::ListTotals;

        /// What the probe saw, shared between the request and the test.
        #[derive(Default, Clone)]
        struct Seen(Arc<Mutex<Vec<Probed>>>);

        /// A resolver's name and the columns it computed.
        type Probed = (&'static str, Vec<&'static str>);

        struct Probe;

        #[Object]
        impl Probe {
            async fn items(&self, ctx: &Context<'_>) -> Connection<usize, Item, ListTotals> {
                let seen = ctx.data_unchecked::<Seen>();
                let field = ctx.field();
                let mut seen = seen.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                seen.push(("items", Projection::for_connection::<Item>(field).columns().collect()));
                for nodes in field.selection_set().filter(|child| child.name() == "nodes") {
                    for relation in nodes.selection_set().filter(|child| child.name() == "recipeIngredients") {
                        let projection = Projection::for_relation::<RecipeIngredient>(relation, &["item_id"]);
                        seen.push(("recipeIngredients", projection.columns().collect()));
                    }
                }
                Connection::with_additional_fields(false, false, ListTotals { total_count: None })
            }
        }

        // A list reads its key, the columns selected under `nodes` and `edges { node }`
        // (fragments included) and the columns its selected relations follow; a relation
        // reads its own selection plus its batching column.
        #[test]
        fn list_and_relation_resolvers_know_the_columns_their_query_selects() {
            let schema = Schema::new(Probe, EmptyMutation, EmptySubscription);
            let query = r#"{ items {
                totalCount
                nodes { name cookingRecipe { name } recipeIngredients { quantity ingredient { name } } ...drops }
                edges { cursor node { dateAdded } }
            } }
            fragment drops on Item { droppedAt { location { name } } }"#;
            let seen = Seen::default();
            let response = futures::executor::block_on(schema.execute(Request::new(query).data(seen.clone())));
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            let seen = seen.0.lock().unwrap().clone();
            assert_eq!(
                seen,
                [
                    ("items", vec!["cooking_recipe_id", "date_added", "id", "name"]),
                    ("recipeIngredients", vec!["ingredient_id", "item_id", "quantity"]),
                ]
            );
        }
    }
}
