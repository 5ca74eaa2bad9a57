//! The GraphQL API on a real server (port 0, real HTTP and WebSocket) over data the pipelines
//! loaded from the real captures: relations both ways, filters, ordering, pagination, limits,
//! the admin token, caching headers, statement counts and subscriptions.

use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::helpers::{captures, eventually, Replay, Server, TestEnv};
use crate::sources::{run, sources_env};

const TOKEN: &str = "test-admin-token";

/// A server over every source loaded from the captures, with an admin token set.
struct Loaded {
    /// Holds the test's directory and database for as long as the server uses them.
    _env: TestEnv,
    server: Server,
    _replay: Replay,
}

fn loaded() -> Option<Loaded> {
    let dir = captures()?;
    let replay = Replay::start(&dir);
    let env = sources_env(&replay.url)?.env("HAYLOFT_ADMIN_TOKEN", TOKEN);
    assert!(run(&env, "all").iter().all(|summary| summary["status"] == "succeeded"));
    let server = env.serve();
    Some(Loaded { _env: env, server, _replay: replay })
}

fn post(server: &Server, query: &str, variables: Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", server.base_url))
        .timeout(Duration::from_secs(20))
        .json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// The `data` of a query that must succeed.
fn data(server: &Server, query: &str) -> Value {
    let (status, body) = post(server, query, json!({}), &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{query}\n{body}");
    body["data"].clone()
}

/// The first error's code.
fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

fn names(list: &Value, path: &[&str]) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let mut value = entry;
            for key in path {
                value = &value[*key];
            }
            value.as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

// Every relation answers in both directions, on the captures' own facts.
#[test]
fn relations_are_navigable_both_ways() {
    let Some(loaded) = loaded() else { return };
    let server = &loaded.server;
    let data = data(
        server,
        r#"{
          pie: item(id: 726) { name cookingRecipe { id name teaches { id } } }
          crafted: item(id: 21) { recipeIngredients { quantity ingredient { id name ingredientOf { item { id } } } } }
          chest: item(id: 329) { contents { item { id containedIn { container { id } } } } }
          seed: item(id: 12) { crops { crop { id grownFrom { seed { id } } } } }
          well: item(id: 37) { wellOutputs { output { id wellInputs { item { id } } } } }
          chocolate: item(id: 483) { npcRelations(relation: "loves") { npc { name items(relation: "loves") { itemId } } } }
          wood: item(id: 35) { name droppedAt { location { name drops { itemId } } } }
          level: towerLevel(level: 1) { rewards { slot item { id towerRewards { towerLevel { level } } } } }
          tree: item(id: 408) { passwordRewards { password passwordEntry { rewards { itemName } } } }
          charles: npcReward(id: 20) { npcName npc { name rewards { id } } }
          misty: location(locationType: "explore", id: 5) { name drops { item { name } } }
          grabBag: item(id: 334) { pageDetails { fleaMarketGold item { name } } pageSources { location { name } } }
        }"#,
    );
    assert_eq!(data["pie"]["cookingRecipe"]["id"], 727);
    assert!(data["pie"]["cookingRecipe"]["teaches"].as_array().unwrap().contains(&json!({"id": 726})));
    let ingredient = &data["crafted"]["recipeIngredients"][0];
    assert_eq!((ingredient["quantity"].as_i64(), ingredient["ingredient"]["id"].as_i64()), (Some(5), Some(35)));
    assert!(ingredient["ingredient"]["ingredientOf"].as_array().unwrap().contains(&json!({"item": {"id": 21}})));
    assert!(data["chest"]["contents"][0]["item"]["containedIn"]
        .as_array()
        .unwrap()
        .contains(&json!({"container": {"id": 329}})));
    assert!(data["seed"]["crops"][0]["crop"]["grownFrom"].as_array().unwrap().contains(&json!({"seed": {"id": 12}})));
    let outputs = data["well"]["wellOutputs"].as_array().unwrap();
    assert!(outputs
        .iter()
        .any(|output| output["output"]["wellInputs"].as_array().unwrap().contains(&json!({"item": {"id": 37}}))));
    let lovers = &data["chocolate"]["npcRelations"];
    assert!(names(lovers, &["npc", "name"]).contains(&"Rosalie".to_owned()), "{lovers}");
    assert!(lovers[0]["npc"]["items"].as_array().unwrap().contains(&json!({"itemId": 483})));
    assert!(names(&data["wood"]["droppedAt"], &["location", "name"]).contains(&"Misty Forest".to_owned()));
    let reward = &data["level"]["rewards"][0];
    assert_eq!(reward["item"]["id"], 44);
    assert!(reward["item"]["towerRewards"].as_array().unwrap().contains(&json!({"towerLevel": {"level": 1}})));
    let kristoff = data["tree"]["passwordRewards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|reward| reward["password"] == "kristoff")
        .unwrap_or_else(|| panic!("{}", data["tree"]));
    assert_eq!(kristoff["passwordEntry"]["rewards"][0]["itemName"], "Christmas Tree");
    assert_eq!(data["charles"]["npc"]["name"], "Charles Horsington III", "the alias resolved");
    assert!(data["charles"]["npc"]["rewards"].as_array().unwrap().contains(&json!({"id": 20})));
    assert_eq!(data["misty"]["drops"].as_array().unwrap().len(), 17);
    assert_eq!(data["grabBag"]["pageDetails"]["fleaMarketGold"], 4);
    assert_eq!(data["grabBag"]["pageSources"].as_array().unwrap().len(), 1);
}

// The other sources' relations, both ways: goals, offers, cards, tent, updates, backgrounds,
// NPC profiles and rewards, keys and chests, item-page sources.
#[test]
fn every_source_relation_is_navigable_both_ways() {
    let Some(loaded) = loaded() else { return };
    let data = data(
        &loaded.server,
        r#"{
          goal: communityGoal(goalDate: "2023-07-09") { goalItem { id communityGoals { goalDate } }
                                                       rewardItem { id communityRewards { goalDate } } }
          offers: exchangeOffers(filter: {giveItemId: {eq: 111}}) { nodes { giveItem { exchangeOffersTaking { receiveItemId } }
                                                                            receiveItem { id exchangeOffersGiving { giveItemId } } } }
          combo: cardCombo(id: 1) { cards { suit combo { id } } rewardItem { id cardCombos { id } } }
          tent: item(id: 84) { tentOffers { itemName item { id } } }
          update: gameUpdate(id: 43) { items { item { id mentionedIn { update { id } } } } }
          background: profileBackground(name: "Buddy's Cave") { costItem { id unlocksBackgrounds { name } } }
          profile: npcProfile(userId: 16) { npc { id profile { userId } } }
          reward: npcRewardItem(rewardId: 3, slot: 1) { reward { id items { itemId } } item { id npcRewards { rewardId } } }
          cecil: npc(id: 5) { exploreLocation { name } }
          chest: item(id: 572) { lootKey { id opens { id } } pageSources { location { name listedByItemPages { itemId } } } }
          level: towerReward(level: 1, slot: 1) { towerLevel { level } }
        }"#,
    );
    let contains = |list: &Value, entry: Value| list.as_array().unwrap().contains(&entry);
    assert!(
        contains(&data["goal"]["goalItem"]["communityGoals"], json!({"goalDate": "2023-07-09"})),
        "{}",
        data["goal"]
    );
    assert!(contains(&data["goal"]["rewardItem"]["communityRewards"], json!({"goalDate": "2023-07-09"})));
    let offer = &data["offers"]["nodes"][0];
    assert!(contains(&offer["giveItem"]["exchangeOffersTaking"], json!({"receiveItemId": 508})));
    assert!(contains(&offer["receiveItem"]["exchangeOffersGiving"], json!({"giveItemId": 111})));
    assert_eq!(data["combo"]["cards"][0]["combo"]["id"], 1);
    assert!(contains(&data["combo"]["rewardItem"]["cardCombos"], json!({"id": 1})));
    assert_eq!(data["tent"]["tentOffers"][0]["item"]["id"], 84);
    let mentioned = &data["update"]["items"];
    assert!(mentioned
        .as_array()
        .unwrap()
        .iter()
        .any(|entry| contains(&entry["item"]["mentionedIn"], json!({"update": {"id": 43}}))));
    assert!(contains(&data["background"]["costItem"]["unlocksBackgrounds"], json!({"name": "Buddy's Cave"})));
    assert_eq!(data["profile"]["npc"]["profile"]["userId"], 16);
    assert!(contains(&data["reward"]["reward"]["items"], json!({"itemId": 639})));
    assert!(contains(&data["reward"]["item"]["npcRewards"], json!({"rewardId": 3})));
    assert_eq!(data["cecil"]["exploreLocation"]["name"], "Misty Forest");
    assert!(contains(&data["chest"]["lootKey"]["opens"], json!({"id": 572})));
    assert!(contains(&data["chest"]["pageSources"][0]["location"]["listedByItemPages"], json!({"itemId": 572})));
    assert_eq!(data["level"]["towerLevel"]["level"], 1);
}

// Filters (equality, in, ranges, contains, booleans, null), ordering with a stable tie-break,
// and Relay pagination with cursors, totalCount and a maximum page size.
#[test]
fn lists_filter_order_and_page() {
    let Some(loaded) = loaded() else { return };
    let server = &loaded.server;
    let data = data(
        server,
        r#"{
          fish: items(filter: {itemType: {eq: "fish"}}) { totalCount }
          some: items(filter: {id: {in: [11, 35, 43, 99999]}}) { totalCount }
          range: items(filter: {id: {gte: 100, lte: 199}}) { totalCount }
          apples: items(filter: {name: {contains: "APPLE"}}) { totalCount }
          cooks: items(filter: {canCook: true}) { totalCount }
          inactive: items(filter: {active: false}) { edges { node { id name } } }
          noRarity: items(filter: {rarity: {isNull: true}}) { totalCount }
          sorted: items(first: 50, orderBy: [{field: ITEM_TYPE, direction: DESC}, {field: NAME}]) { edges { node { itemType name id } } }
        }"#,
    );
    assert_eq!(data["fish"]["totalCount"], 106);
    assert_eq!(data["some"]["totalCount"], 3);
    assert_eq!(data["range"]["totalCount"], 100, "ids 100..=199");
    assert_eq!(data["apples"]["totalCount"], 11, "contains ignores case");
    assert_eq!(data["cooks"]["totalCount"], 14);
    assert_eq!(data["inactive"]["edges"][0]["node"], json!({"id": 1018, "name": "Cursed Effigy"}));
    assert_eq!(data["noRarity"]["totalCount"], 1020);
    let sorted: Vec<(String, String)> = data["sorted"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            (edge["node"]["itemType"].as_str().unwrap().to_owned(), edge["node"]["name"].as_str().unwrap().to_owned())
        })
        .collect();
    let mut expected = sorted.clone();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(sorted, expected);

    // Walk the fish three pages at a time: no overlap, no gap, the right end.
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let (_, body) = post(
            server,
            "query($after: String) { items(first: 40, after: $after, filter: {itemType: {eq: \"fish\"}}) {
               totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
            json!({ "after": after }),
            &[],
        );
        let page = &body["data"]["items"];
        seen.extend(page["edges"].as_array().unwrap().iter().map(|edge| edge["node"]["id"].as_i64().unwrap()));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 106);
    assert!(seen.windows(2).all(|pair| pair[0] < pair[1]), "ordered by key, no duplicates");
    let last = data_last_page(server);
    assert_eq!(last, seen[seen.len() - 5..].to_vec(), "last: 5 is the end of the list");

    let (_, body) = post(server, "{ items(first: 5000) { totalCount } }", json!({}), &[]);
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

fn data_last_page(server: &Server) -> Vec<i64> {
    let data = data(server, "{ items(last: 5, filter: {itemType: {eq: \"fish\"}}) { edges { node { id } } } }");
    data["items"]["edges"].as_array().unwrap().iter().map(|edge| edge["node"]["id"].as_i64().unwrap()).collect()
}

// Nested fields are batched: the statements of a query grow with its depth, not its rows.
#[test]
fn nested_queries_are_not_n_plus_one() {
    let Some(loaded) = loaded() else { return };
    let server = &loaded.server;
    let statements = |first: usize| {
        let query = format!(
            "{{ items(first: {first}) {{ edges {{ node {{ name recipeIngredients {{ quantity ingredient {{ name }} }}
                droppedAt {{ location {{ name }} }} npcRelations {{ npc {{ name }} }} }} }} }} }}"
        );
        // The count is process-wide: the least of three leaves out any background work.
        (0..3)
            .map(|_| {
                let (status, body) = post(server, &query, json!({}), &[("hayloft-statements", "on")]);
                assert_eq!(status, 200);
                assert!(body["errors"].is_null(), "{body}");
                body["extensions"]["sqlStatements"].as_u64().unwrap()
            })
            .min()
            .unwrap()
    };
    let small = statements(5);
    let large = statements(1000);
    assert!(small <= large, "statements grew with the rows: {small} for 5 items, {large} for 1,000");
    // The page, then one batch per relation and level: ingredients and their items, drops and
    // their locations, NPC relations and their NPCs.
    assert_eq!(large, 7, "{large} statements");
}

// A query reads only the columns it selects (the rest stand in as constants), yet however it
// selects them — fragments, aliases, a relation following a column nobody asked for — it
// answers what whole rows answer; `totalCount` alone runs only the count.
#[test]
fn queries_read_what_they_select_and_answer_as_whole_rows() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.only(&["items"]);
    let server = env.serve();
    eventually(Duration::from_secs(30), || {
        let data = data(&server, "{ pipelines { name lastRun { status } } }");
        let items = data["pipelines"].as_array()?.iter().find(|pipeline| pipeline["name"] == "items")?.clone();
        (items["lastRun"]["status"] == "succeeded").then_some(())
    })
    .expect("the sample items loaded");
    let whole = data(
        &server,
        "{ items(first: 2000) { nodes { id name image sellPrice canCook cookingRecipeId xpValue
            cookingRecipe { id name image } recipeIngredients { quantity kind ingredient { id name } } } } }",
    );
    let narrow = data(
        &server,
        r#"{ items(first: 2000) { nodes { ...Basics title: name
            cookingRecipe { ... on Item { id name } image }
            recipeIngredients { quantity ingredient { name } } } } }
        fragment Basics on Item { id image sellPrice canCook xpValue }"#,
    );
    let (whole, narrow) = (whole["items"]["nodes"].as_array().unwrap(), narrow["items"]["nodes"].as_array().unwrap());
    assert_eq!(whole.len(), narrow.len());
    assert!(whole.iter().any(|item| !item["cookingRecipe"].is_null()), "the sample has cooking recipes");
    assert!(whole.iter().any(|item| item["recipeIngredients"].as_array().is_some_and(|list| !list.is_empty())));
    for (whole, narrow) in whole.iter().zip(narrow) {
        for field in ["id", "image", "sellPrice", "canCook", "xpValue", "cookingRecipe"] {
            assert_eq!(whole[field], narrow[field], "{field} of {whole}");
        }
        assert_eq!(whole["name"], narrow["title"]);
        let ingredients = |item: &Value| -> Vec<(Value, Value)> {
            item["recipeIngredients"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| (row["quantity"].clone(), row["ingredient"]["name"].clone()))
                .collect()
        };
        assert_eq!(ingredients(whole), ingredients(narrow), "ingredients of item {}", whole["id"]);
    }
    // Two selections under one response key are merged, each having read its own columns.
    let merged = data(&server, "{ items(first: 5) { nodes { id } } items(first: 5) { nodes { name } } }");
    for (merged, whole) in merged["items"]["nodes"].as_array().unwrap().iter().zip(whole) {
        assert_eq!((&merged["id"], &merged["name"]), (&whole["id"], &whole["name"]));
    }
    let count = |query: &str| {
        let (status, body) = post(&server, query, json!({}), &[("hayloft-statements", "on")]);
        assert_eq!(status, 200);
        assert!(body["errors"].is_null(), "{body}");
        (body["data"]["items"]["totalCount"].as_i64().unwrap(), body["extensions"]["sqlStatements"].as_u64().unwrap())
    };
    let (total, _) = count("{ items(first: 1) { totalCount nodes { id } } }");
    assert!(total > 1000, "{total} sample items");
    // The count is process-wide: the least of three leaves out any background work.
    let statements = (0..3).map(|_| count("{ items { totalCount } }")).inspect(|(alone, _)| assert_eq!(*alone, total));
    assert_eq!(statements.map(|(_, statements)| statements).min(), Some(1), "totalCount alone is one COUNT");
}

// Every field of every list, asked for alone, answers what it answers beside all the others:
// the projection reads each field's columns (and each relation's keys) on its own, for every
// entity the schema has, not only the ones a test names.
#[test]
fn every_field_alone_answers_as_in_the_whole_row() {
    let Some(loaded) = loaded() else { return };
    // No capture holds the quests API: its real examples fill the quest lists.
    // Nor the pet API: the original system's pet records fill the pet lists. Its other dumps
    // fill the lists only an import writes.
    let env = &loaded._env;
    if !crate::quests::load_examples(env) || !crate::pets::load_seed_pets(env) || !crate::import::import_seed(env) {
        return;
    }
    let server = &loaded.server;
    let innermost = |mut kind: &Value| {
        while kind["ofType"].is_object() {
            kind = &kind["ofType"];
        }
        kind.clone()
    };
    let type_query = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";
    let roots =
        data(server, &format!("{{ __schema {{ queryType {{ fields {{ name type {{ {type_query} }} }} }} }} }}"));
    let mut checked = 0;
    for root in roots["__schema"]["queryType"]["fields"].as_array().unwrap() {
        let connection = innermost(&root["type"]);
        let Some(node_type) = connection["name"].as_str().and_then(|name| name.strip_suffix("Connection")) else {
            continue;
        };
        let root = root["name"].as_str().unwrap();
        let fields = data(
            server,
            &format!(
                "{{ __type(name: \"{node_type}\") {{ fields {{ name args {{ type {{ kind }} }} type {{ {type_query} }} }} }} }}"
            ),
        );
        // A field selection that reads the field: a leaf as is, an object by its type name.
        let selections: Vec<(String, String)> = fields["__type"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|field| field["args"].as_array().unwrap().iter().all(|arg| arg["type"]["kind"] != "NON_NULL"))
            .map(|field| {
                let name = field["name"].as_str().unwrap().to_owned();
                let leaf = matches!(innermost(&field["type"])["kind"].as_str(), Some("SCALAR" | "ENUM"));
                let selection = if leaf { name.clone() } else { format!("{name} {{ __typename }}") };
                (name, selection)
            })
            .collect();
        let nodes = |selection: &str| {
            let answer = data(server, &format!("{{ {root}(first: 50) {{ nodes {{ {selection} }} }} }}"));
            answer[root]["nodes"].as_array().unwrap().clone()
        };
        let all: Vec<&str> = selections.iter().map(|(_, selection)| selection.as_str()).collect();
        let whole = nodes(&all.join(" "));
        assert!(!whole.is_empty(), "{root}: the captures load rows for every list");
        for (field, selection) in &selections {
            let alone = nodes(selection);
            assert_eq!(alone.len(), whole.len(), "{root}.{field}");
            for (alone, whole) in alone.iter().zip(&whole) {
                assert_eq!(alone[field], whole[field], "{root}.{field} alone, against the whole row {whole}");
            }
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked} fields checked");
}

// Depth, complexity and alias limits, bad input and oversized bodies get stable codes.
#[test]
fn limits_and_errors_have_stable_codes() {
    let Some(loaded) = loaded() else { return };
    let server = &loaded.server;
    let nested = "{ recipeIngredients { ingredient ".repeat(8);
    let deep = format!("{{ item(id: 21) {nested}{{ name }}{} }}", " } }".repeat(8));
    let (_, body) = post(server, &deep, json!({}), &[]);
    assert_eq!(error_code(&body), "TOO_COMPLEX", "{body}");
    let aliases: String = (0..40).map(|index| format!("a{index}: item(id: 11) {{ name }} ")).collect();
    let (_, body) = post(server, &format!("{{ {aliases} }}"), json!({}), &[]);
    assert_eq!(error_code(&body), "TOO_COMPLEX", "{body}");
    let (_, body) = post(server, "{ items { nope } }", json!({}), &[]);
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let (_, body) = post(server, "{ runs(pipeline: \"nope\") { id } }", json!({}), &[]);
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let huge = format!("{{ item(id: 11) {{ name }} }} #{}", "x".repeat(100_000));
    let (status, body) = post(server, &huge, json!({}), &[]);
    assert_eq!(status, 413, "the body limit");
    assert_eq!(error_code(&body), "TOO_LARGE", "{body}");
    let data = data(server, "{ item(id: 99999) { name } }");
    assert!(data["item"].is_null());
}

// The introspection query GraphiQL and other schema-driven tools send (graphql-js
// `getIntrospectionQuery()`, 15 levels deep) is answered: introspection is bounded on its own
// terms, not by the data's depth limit of 12, which still refuses deep data queries above.
#[test]
fn the_standard_introspection_query_is_answered() {
    let Some(loaded) = loaded() else { return };
    let query = include_str!("../snapshots/introspection_query.graphql");
    let (status, body) = post(&loaded.server, query, json!({}), &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().expect("the types");
    assert!(types.iter().any(|kind| kind["name"] == "Item"), "{} types", types.len());
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
}

// runPipeline needs the admin token; with it the run goes through the ledger. GET answers
// carry an ETag and Cache-Control, and a matching If-None-Match gets 304; GET cannot mutate.
#[test]
fn the_mutation_needs_the_token_and_gets_are_cacheable() {
    let Some(loaded) = loaded() else { return };
    let server = &loaded.server;
    let mutation = "mutation { runPipeline(name: \"tent\") { id pipeline status trigger } }";
    let (_, body) = post(server, mutation, json!({}), &[]);
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, body) = post(server, mutation, json!({}), &[("authorization", "Bearer wrong")]);
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let bearer = format!("Bearer {TOKEN}");
    let (_, body) = post(server, mutation, json!({}), &[("authorization", &bearer)]);
    assert!(body["errors"].is_null(), "{body}");
    let run_id = body["data"]["runPipeline"]["id"].as_i64().unwrap();
    assert_eq!(body["data"]["runPipeline"]["trigger"], "manual");
    let finished = eventually(Duration::from_secs(15), || {
        let data = data(server, &format!("{{ run(id: {run_id}) {{ status }} }}"));
        (data["run"]["status"] == "succeeded").then_some(())
    });
    assert!(finished.is_some(), "the triggered run finished");

    let client = reqwest::blocking::Client::new();
    let url = format!("{}/graphql?query={{items(first:2){{edges{{node{{id}}}}}}}}", server.base_url);
    let first = client.get(&url).send().unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(first.headers()["cache-control"].to_str().unwrap().starts_with("public, max-age="));
    let again = client.get(&url).header("if-none-match", &etag).send().unwrap();
    assert_eq!(again.status(), 304);
    let get_mutation = format!("{}/graphql?query=mutation{{runPipeline(name:\"tent\"){{id}}}}", server.base_url);
    let body: Value = client.get(get_mutation).header("authorization", &bearer).send().unwrap().json().unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

// Operations data: pipelines with schedules and runs, the change feed, the supervisor tree.
#[test]
fn operations_data_is_in_the_schema() {
    let Some(loaded) = loaded() else { return };
    let data = data(
        &loaded.server,
        r#"{
          pipelines { name schedule nextRun enabled lastRun { status inserted } }
          runs(pipeline: "tower", first: 1) { id status inserted notes }
          changes(entity: "npc", key: "1") { op runId }
          supervisorTree { name state children { name state children { name } } }
        }"#,
    );
    let pipelines = data["pipelines"].as_array().unwrap();
    assert_eq!(pipelines[0]["name"], "items");
    assert_eq!(pipelines[0]["lastRun"]["inserted"], 2872);
    assert_eq!(data["runs"][0]["inserted"], 1173);
    assert_eq!(data["changes"][0]["op"], "insert");
    assert_eq!(data["supervisorTree"]["name"], "root");
    let children = names(&data["supervisorTree"]["children"], &["name"]);
    assert!(children.contains(&"pipelines".to_owned()) && children.contains(&"http".to_owned()), "{children:?}");
}

/// A WebSocket client speaking `protocol` to the server's /graphql.
fn websocket(server: &Server, protocol: &str) -> WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
    let url = format!("{}/graphql", server.base_url.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (mut socket, _) = tungstenite::connect(request).expect("the WebSocket opens");
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_mut() {
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    socket.send(Message::text(json!({"type": "connection_init", "payload": {}}).to_string())).unwrap();
    let ack: Value = serde_json::from_str(socket.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

/// A WebSocket on `protocol` with one subscription, `id`, to `query` already sent (graphql-ws
/// calls the message `start`, graphql-transport-ws `subscribe`).
fn subscribe(
    server: &Server,
    protocol: &str,
    id: &str,
    query: &str,
) -> WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
    let mut socket = websocket(server, protocol);
    let kind = if protocol == "graphql-ws" { "start" } else { "subscribe" };
    let message = json!({"id": id, "type": kind, "payload": {"query": query}});
    socket.send(Message::text(message.to_string())).unwrap();
    socket
}

/// The next `next`/`data` message's payload data.
fn next_data(socket: &mut WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>) -> Value {
    loop {
        let message = socket.read().expect("a message before the timeout");
        // Protocol pings (the server's keep-alive while a long run goes on) carry no payload.
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => panic!("the server closed the subscription: {frame:?}"),
            _ => continue,
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        match value["type"].as_str() {
            Some("next" | "data") => return value["payload"]["data"].clone(),
            Some("ka" | "ping" | "pong") | None => continue,
            Some(other) => panic!("unexpected {other}: {value}"),
        }
    }
}

/// How many subscribers the server's event bus has (its `/metrics`).
fn bus_subscribers(server: &Server) -> u64 {
    let metrics = server.get("/metrics").text().unwrap();
    let line = metrics.lines().find(|line| line.starts_with("hayloft_event_bus_subscribers ")).unwrap().to_owned();
    line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
}

// Subscriptions over a real WebSocket (graphql-transport-ws, and graphql-ws for older
// clients) receive a run-finished event and the change events of a run the mutation started.
#[test]
fn subscriptions_receive_runs_and_changes() {
    let Some(dir) = captures() else { return };
    let replay = Replay::start(&dir);
    let Some(env) = sources_env(&replay.url) else { return };
    let env = env.env("HAYLOFT_ADMIN_TOKEN", TOKEN).env("HAYLOFT_PIPELINES__TENT__ENABLED", "false");
    assert!(run(&env, "items").iter().all(|summary| summary["status"] == "succeeded"));
    let server = env.serve();
    let subscribers = || bus_subscribers(&server);
    let before = subscribers();

    let mut modern = subscribe(
        &server,
        "graphql-transport-ws",
        "1",
        "subscription { runFinished(pipeline: \"tent\") { pipeline status inserted } }",
    );
    let mut legacy = subscribe(
        &server,
        "graphql-ws",
        "2",
        "subscription { changes(entity: \"tent_offer\") { op entity key pipeline } }",
    );
    let mut logs =
        subscribe(&server, "graphql-transport-ws", "3", "subscription { logs(level: INFO) { level message actor } }");
    // The run starts once all three subscriptions listen on the bus.
    let listening = eventually(Duration::from_secs(30), || (subscribers() >= before + 3).then_some(()));
    assert!(listening.is_some(), "{} bus subscribers, {before} before", subscribers());
    let (_, body) = post(
        &server,
        "mutation { runPipeline(name: \"tent\") { id } }",
        json!({}),
        &[("authorization", &format!("Bearer {TOKEN}"))],
    );
    assert!(body["errors"].is_null(), "{body}");

    let finished = next_data(&mut modern);
    assert_eq!(finished["runFinished"], json!({"pipeline": "tent", "status": "succeeded", "inserted": 7}));
    let change = next_data(&mut legacy);
    assert_eq!(
        (change["changes"]["op"].as_str(), change["changes"]["entity"].as_str()),
        (Some("insert"), Some("tent_offer"))
    );
    assert_eq!(change["changes"]["pipeline"], "tent");
    let line = next_data(&mut logs);
    assert!(["INFO", "WARN", "ERROR"].contains(&line["logs"]["level"].as_str().unwrap()), "{line}");
    assert!(!line["logs"]["message"].as_str().unwrap().is_empty(), "{line}");
}

// A fan-out's rows are written page by page by the page worker, not by the run's loader: their
// changes still reach a `changes` subscriber, with the fan-out pipeline's name, and the run's end
// still reaches `runFinished`.
#[test]
fn fan_out_page_changes_reach_subscribers() {
    let Some(dir) = captures() else { return };
    let replay = Replay::start(&dir);
    let Some(env) = sources_env(&replay.url) else { return };
    let env = env.env("HAYLOFT_ADMIN_TOKEN", TOKEN).env("HAYLOFT_PIPELINES__ITEM_PAGES__ENABLED", "false");
    for pipeline in ["items", "locations"] {
        assert!(run(&env, pipeline).iter().all(|summary| summary["status"] == "succeeded"), "{pipeline}");
    }
    let server = env.serve();
    let subscribers = || bus_subscribers(&server);
    let before = subscribers();
    let mut finished = subscribe(
        &server,
        "graphql-transport-ws",
        "1",
        "subscription { runFinished(pipeline: \"item_pages\") { pipeline status } }",
    );
    let mut changes = subscribe(
        &server,
        "graphql-transport-ws",
        "2",
        "subscription { changes(entity: \"item_detail\") { op entity key pipeline } }",
    );
    // The run starts once both subscriptions listen on the bus.
    let listening = eventually(Duration::from_secs(60), || (subscribers() >= before + 2).then_some(()));
    assert!(listening.is_some(), "{} bus subscribers, {before} before", subscribers());
    let (_, body) = post(
        &server,
        "mutation { runPipeline(name: \"item_pages\") { id } }",
        json!({}),
        &[("authorization", &format!("Bearer {TOKEN}"))],
    );
    assert!(body["errors"].is_null(), "{body}");
    let change = next_data(&mut changes);
    assert_eq!(
        (
            change["changes"]["op"].as_str(),
            change["changes"]["entity"].as_str(),
            change["changes"]["pipeline"].as_str()
        ),
        (Some("insert"), Some("item_detail"), Some("item_pages")),
        "{change}"
    );
    assert!(change["changes"]["key"].as_str().is_some_and(|key| !key.is_empty()), "{change}");
    let end = next_data(&mut finished);
    assert_eq!(end["runFinished"], json!({"pipeline": "item_pages", "status": "succeeded"}));
}

// `hayloft schema` prints the SDL pinned in tests/snapshots/schema.graphql (run with
// HAYLOFT_UPDATE_SNAPSHOTS=1 to accept a deliberate change).
#[test]
fn the_schema_is_pinned() {
    let Some(env) = TestEnv::new() else { return };
    let output = env.run(&["schema"]);
    assert!(output.status.success());
    let sdl = String::from_utf8(output.stdout).unwrap();
    crate::helpers::snapshot("schema.graphql", &sdl);
}

// A representative nested response over the embedded sample data, pinned.
#[test]
fn a_representative_response_is_pinned() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.only(&["items", "npcs", "locations"]);
    let server = env.serve();
    eventually(Duration::from_secs(30), || {
        let data = data(&server, "{ pipelines { name lastRun { status } } }");
        let done = data["pipelines"]
            .as_array()?
            .iter()
            .filter(|pipeline| pipeline["lastRun"]["status"] == "succeeded")
            .count();
        (done == 3).then_some(())
    })
    .expect("the sample data loaded");
    let data = data(
        &server,
        r#"{
          npcs(first: 2, orderBy: [{field: NAME}]) { totalCount edges { cursor node { name
            items(relation: "loves") { item { id name } }
            rewards { level silver items { quantity item { name } } } } } }
          crafted: item(id: 211) { name recipeIngredients { quantity ingredient { name ingredientOf { itemId } } } }
          locations(first: 2, orderBy: [{field: NAME, direction: DESC}]) { edges { node { locationType name
            drops { item { name } } } } }
        }"#,
    );
    crate::helpers::snapshot("sample_items.json", &serde_json::to_string_pretty(&data).unwrap());
}

// CORS answers configured origins only, and a request past its time limit gets TIMEOUT.
#[test]
fn cors_and_timeouts_are_configured() {
    let Some(env) = TestEnv::new() else { return };
    let env = env
        .only(&[])
        .env("HAYLOFT_GRAPHQL__CORS_ORIGINS", "[\"https://fans.example\"]")
        .env("HAYLOFT_GRAPHQL__TIMEOUT", "1ns");
    let server = env.serve();
    let client = reqwest::blocking::Client::new();
    let preflight = |origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", server.base_url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .unwrap()
    };
    let allowed = preflight("https://fans.example");
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://fans.example");
    assert!(preflight("https://elsewhere.example").headers().get("access-control-allow-origin").is_none());
    // A request that cannot finish within the timer's millisecond: 20 × 14 pipelines' runs.
    let slow: String = (0..20).map(|index| format!("p{index}: pipelines {{ name lastRun {{ id }} }} ")).collect();
    // Twice: a request past its limit must leave the worker able to answer the next one.
    for _ in 0..2 {
        let (_, body) = post(&server, &format!("{{ {slow} }}"), json!({}), &[]);
        assert_eq!(error_code(&body), "TIMEOUT", "{body}");
    }
    assert_eq!(server.get("/healthz").status(), 200);
}
