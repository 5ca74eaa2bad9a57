//! What a document would cost, measured before anything else looks at it, in time linear in
//! its size.
//!
//! Fragments let a small document stand for a huge one: `fragment F1 on Item { id ...F2 ...F2 }`,
//! `F2` spreading `F3` twice, and so on for 28 levels, is 1.2 KB that expands to 2^28 fields.
//! async-graphql's validation (and any walk that follows spreads, as the alias count did) visits
//! every expanded field, so that document used to cost a minute of CPU on an HTTP worker before
//! it was refused. Here each fragment is measured once and its totals reused wherever it is
//! spread, so the document's expanded size is known after one pass; a document over the limits
//! is refused before validation, and one within them validates in bounded time.
//!
//! Introspection (`__schema`, `__type`) is bounded on its own terms: its answer is made of the
//! schema, whatever the query, so its nesting does not count against the data's depth limit
//! but against [`MAX_INTROSPECTION_DEPTH`]. The query GraphiQL and other tools send
//! (graphql-js `getIntrospectionQuery()`, 15 levels with its `ofType` chain) passes; its fields
//! still count.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// How deep an introspection selection may nest: graphql-js's default `typeDepth` of 9 needs
/// 15 levels; this leaves room for tools that ask for deeper `ofType` chains, and still bounds
/// the work (each level is one more lookup in the schema, never a query).
pub const MAX_INTROSPECTION_DEPTH: u64 = 32;

/// The limits a document is measured against (from `[graphql]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Fields after every fragment is expanded.
    pub max_fields: u64,
    /// Aliased fields after expansion.
    pub max_aliases: u64,
    /// Selection depth after expansion.
    pub max_depth: u64,
    /// Fragment spreads as written: a cheap bound on the work of the walk itself.
    pub max_spreads: u64,
}

/// A document's size as it would execute, every fragment expanded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub fields: u64,
    pub aliases: u64,
    /// Nesting of the data selections.
    pub depth: u64,
    /// Nesting of the introspection selections (`__schema { … }`), counted from the
    /// introspection field down.
    pub introspection_depth: u64,
}

impl Cost {
    fn add(self, other: Cost) -> Cost {
        Cost {
            fields: self.fields.saturating_add(other.fields),
            aliases: self.aliases.saturating_add(other.aliases),
            depth: self.depth.max(other.depth),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
        }
    }
}

/// The meta-fields whose answers are the schema itself.
fn is_introspection(field: &str) -> bool {
    matches!(field, "__schema" | "__type")
}

/// A fragment on one of the introspection types (`__Type`, `__Field`, …) selects nothing but
/// introspection, wherever it is spread.
fn on_introspection_type(condition: &async_graphql::parser::types::TypeCondition) -> bool {
    condition.on.node.as_str().starts_with("__")
}

/// A cost measured below an introspection field: all of its nesting is introspection's.
fn as_introspection(cost: Cost) -> Cost {
    Cost { depth: 0, introspection_depth: cost.depth.max(cost.introspection_depth), ..cost }
}

/// Why a document was refused before validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    #[error("the query spreads fragments {spreads} times; at most {limit} are allowed")]
    Spreads { spreads: u64, limit: u64 },
    #[error("the query expands to {fields} fields once its fragments are spread; at most {limit} are allowed")]
    Fields { fields: u64, limit: u64 },
    #[error("the query uses {aliases} aliases; at most {limit} are allowed")]
    Aliases { aliases: u64, limit: u64 },
    #[error("the query is nested {depth} levels deep once its fragments are spread; at most {limit} are allowed")]
    Depth { depth: u64, limit: u64 },
    #[error("the introspection selection is nested {depth} levels deep; at most {limit} are allowed")]
    IntrospectionDepth { depth: u64, limit: u64 },
    #[error("fragment {0} spreads itself")]
    Cycle(String),
}

enum Memo {
    InProgress,
    Done(Cost),
}

struct Measure<'a> {
    document: &'a ExecutableDocument,
    fragments: HashMap<&'a str, Memo>,
    spreads: u64,
    budget: Budget,
    /// How many introspection selections the walk is inside: there, nesting is checked
    /// against the introspection bound, not the data's.
    introspecting: u32,
}

impl<'a> Measure<'a> {
    fn selections(&mut self, set: &'a SelectionSet) -> Result<Cost, OverBudget> {
        let mut total = Cost::default();
        for selection in &set.items {
            let cost = match &selection.node {
                Selection::Field(field) => {
                    let introspection = is_introspection(field.node.name.node.as_str());
                    let below =
                        self.within(introspection, |measure| measure.selections(&field.node.selection_set.node))?;
                    let fields = below.fields.saturating_add(1);
                    let aliases = below.aliases.saturating_add(u64::from(field.node.alias.is_some()));
                    let cost = Cost { fields, aliases, depth: below.depth + 1, ..below };
                    // Everything below answers from the schema: its depth is introspection's.
                    if introspection {
                        as_introspection(cost)
                    } else {
                        cost
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let meta = fragment
                        .node
                        .type_condition
                        .as_ref()
                        .is_some_and(|condition| on_introspection_type(&condition.node));
                    // On an introspection type its nesting counts where the introspection
                    // field above turns the whole subtree's depth into introspection's.
                    self.within(meta, |measure| measure.selections(&fragment.node.selection_set.node))?
                }
                Selection::FragmentSpread(spread) => self.fragment(spread.node.fragment_name.node.as_str())?,
            };
            total = total.add(cost);
            // Refuse as soon as a total is over: the numbers only grow from here.
            self.check(total)?;
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &'a str) -> Result<Cost, OverBudget> {
        self.spreads += 1;
        if self.spreads > self.budget.max_spreads {
            return Err(OverBudget::Spreads { spreads: self.spreads, limit: self.budget.max_spreads });
        }
        match self.fragments.get(name) {
            Some(Memo::Done(cost)) => return Ok(*cost),
            Some(Memo::InProgress) => return Err(OverBudget::Cycle(name.to_owned())),
            None => {}
        }
        // An unknown fragment costs nothing here; validation reports it.
        let Some((key, definition)) = self.document.fragments.get_key_value(name) else {
            return Ok(Cost::default());
        };
        self.fragments.insert(key.as_str(), Memo::InProgress);
        let meta = on_introspection_type(&definition.node.type_condition.node);
        let cost = self.within(meta, |measure| measure.selections(&definition.node.selection_set.node))?;
        self.fragments.insert(key.as_str(), Memo::Done(cost));
        Ok(cost)
    }

    /// Runs `walk` inside an introspection selection when `introspection` says so.
    fn within(
        &mut self,
        introspection: bool,
        walk: impl FnOnce(&mut Self) -> Result<Cost, OverBudget>,
    ) -> Result<Cost, OverBudget> {
        self.introspecting += u32::from(introspection);
        let cost = walk(self);
        self.introspecting -= u32::from(introspection);
        cost
    }

    fn check(&self, cost: Cost) -> Result<(), OverBudget> {
        let budget = self.budget;
        if cost.fields > budget.max_fields {
            return Err(OverBudget::Fields { fields: cost.fields, limit: budget.max_fields });
        }
        if cost.aliases > budget.max_aliases {
            return Err(OverBudget::Aliases { aliases: cost.aliases, limit: budget.max_aliases });
        }
        // Inside an introspection selection the nesting so far is introspection's too.
        let introspection_depth =
            if self.introspecting > 0 { cost.depth.max(cost.introspection_depth) } else { cost.introspection_depth };
        if self.introspecting == 0 && cost.depth > budget.max_depth {
            return Err(OverBudget::Depth { depth: cost.depth, limit: budget.max_depth });
        }
        if introspection_depth > MAX_INTROSPECTION_DEPTH {
            return Err(OverBudget::IntrospectionDepth { depth: introspection_depth, limit: MAX_INTROSPECTION_DEPTH });
        }
        Ok(())
    }
}

/// Measures every operation of `document` (validation looks at them all) against `budget`.
pub fn measure(document: &ExecutableDocument, budget: Budget) -> Result<Cost, OverBudget> {
    let mut measure = Measure { document, fragments: HashMap::new(), spreads: 0, budget, introspecting: 0 };
    let mut total = Cost::default();
    for (_, operation) in document.operations.iter() {
        total = total.add(measure.selections(&operation.node.selection_set.node)?);
        measure.check(total)?;
    }
    // Fragments no operation spreads are still validated: measure them too.
    for name in document.fragments.keys() {
        measure.fragment(name.as_str())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BUDGET: Budget = Budget { max_fields: 10_000, max_aliases: 30, max_depth: 12, max_spreads: 500 };

    fn cost(query: &str) -> Result<Cost, OverBudget> {
        measure(&async_graphql::parser::parse_query(query).unwrap(), BUDGET)
    }

    /// `levels` fragments, each spreading the next twice: 2^levels fields once expanded.
    fn doubling(levels: usize) -> String {
        let mut query = String::from("{ items { nodes { ...F1 } } }\n");
        for level in 1..levels {
            query.push_str(&format!("fragment F{level} on Item {{ id ...F{next} ...F{next} }}\n", next = level + 1));
        }
        query.push_str(&format!("fragment F{levels} on Item {{ id }}\n"));
        query
    }

    // Fields, aliases and depth count every spread of a fragment.
    #[test]
    fn fragments_count_where_they_are_spread() {
        let measured = cost("{ a: items { nodes { ...F ...F } } } fragment F on Item { id b: name }").unwrap();
        assert_eq!(measured, Cost { fields: 6, aliases: 3, depth: 3, introspection_depth: 0 });
    }

    // Fragment doubling is refused at once, in one pass, however many levels it has.
    #[test]
    fn doubling_fragments_are_refused_quickly() {
        assert!(cost(&doubling(8)).is_ok());
        for levels in [20, 28, 60] {
            let started = std::time::Instant::now();
            let refused = cost(&doubling(levels)).unwrap_err();
            assert!(matches!(refused, OverBudget::Fields { .. }), "{refused}");
            // Linear work: far under a millisecond in release, generous for debug builds.
            assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
        }
    }

    // The standard introspection query passes: its depth is introspection's own, its fields
    // count. Introspection nested past its own limit is refused, and data selections inside a
    // query that also introspects keep their limit.
    #[test]
    fn introspection_is_bounded_on_its_own_terms() {
        let standard = include_str!("../../../tests/snapshots/introspection_query.graphql");
        let measured = cost(standard).unwrap();
        assert_eq!((measured.depth, measured.introspection_depth), (0, 15), "{measured:?}");
        assert!(measured.fields > 100, "{measured:?}");
        let chain = format!("{{ __schema {{ types {{ {}name{} }} }} }}", "ofType { ".repeat(40), " }".repeat(40));
        assert!(matches!(cost(&chain), Err(OverBudget::IntrospectionDepth { .. })), "{:?}", cost(&chain));
        let deep = format!("{{ __typename {}x{} }}", "a { ".repeat(12), " }".repeat(12));
        assert!(matches!(cost(&deep), Err(OverBudget::Depth { depth: 13, .. })));
    }

    // Cycles, spread counts, aliases and depth each have their own refusal.
    #[test]
    fn each_limit_has_its_reason() {
        assert!(matches!(cost("{ items { nodes { ...A } } } fragment A on Item { ...A }"), Err(OverBudget::Cycle(_))));
        let spreads: String = (0..501).map(|_| "...F ").collect();
        let many = format!("{{ items {{ nodes {{ {spreads} }} }} }} fragment F on Item {{ id }}");
        assert!(matches!(cost(&many), Err(OverBudget::Spreads { .. })));
        let aliases: String = (0..31).map(|n| format!("a{n}: id ")).collect();
        assert!(matches!(cost(&format!("{{ items {{ nodes {{ {aliases} }} }} }}")), Err(OverBudget::Aliases { .. })));
        let deep = format!("{}{}", "{ a ".repeat(13), "}".repeat(13));
        assert!(matches!(cost(&deep), Err(OverBudget::Depth { depth: 13, .. })));
    }
}
