//! Root fields: a list per entity (Relay connection with `filter`, `orderBy`, cursors and
//! `totalCount`) and a lookup by key. Filters and ordering become SQL (`WHERE`, `ORDER BY`,
//! `LIMIT`/`OFFSET`): one statement per list, plus one `COUNT` only when `totalCount` is asked.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Enum, InputObject, Result, SimpleObject};

use super::errors::bad_input;

/// Rows a page holds when neither `first` nor `last` is given.
pub const DEFAULT_PAGE: usize = 100;
/// The largest page one request may ask for.
pub const MAX_PAGE: usize = 2_000;

diesel::define_sql_function! {
    /// Lower case, for case-insensitive `contains` on both backends.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Conditions on a whole-number field; all given conditions must hold.
#[derive(InputObject, Default, Clone)]
pub struct IntFilter {
    pub eq: Option<i64>,
    #[graphql(name = "in")]
    pub in_list: Option<Vec<i64>>,
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
    /// `true`: only rows without a value; `false`: only rows with one.
    pub is_null: Option<bool>,
}

/// Conditions on a text field; `contains` ignores case.
#[derive(InputObject, Default, Clone)]
pub struct TextFilter {
    pub eq: Option<String>,
    #[graphql(name = "in")]
    pub in_list: Option<Vec<String>>,
    pub contains: Option<String>,
    pub is_null: Option<bool>,
}

/// Conditions on a decimal field.
#[derive(InputObject, Default, Clone)]
pub struct FloatFilter {
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
    pub is_null: Option<bool>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

/// Fields every connection carries besides its edges.
#[derive(SimpleObject)]
pub struct ListTotals {
    /// Rows matching the filter, over all pages (computed only when asked for).
    pub total_count: Option<i64>,
}

/// A `LIKE` pattern matching `text` anywhere, with `%`, `_` and `\` taken literally.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The rows a Relay page covers: `(offset, limit)` from `after`/`before` (offset cursors) and
/// `first`/`last`. `total` is needed only for `last` without `before`.
pub fn window(
    after: Option<usize>,
    before: Option<usize>,
    first: Option<usize>,
    last: Option<usize>,
    total: Option<usize>,
) -> Result<(usize, usize)> {
    if first.is_some_and(|first| first > MAX_PAGE) || last.is_some_and(|last| last > MAX_PAGE) {
        return Err(bad_input(format!("a page holds at most {MAX_PAGE} rows; ask for fewer and page with cursors")));
    }
    let start = after.map_or(0, |after| after + 1);
    let end = match before {
        Some(before) => before,
        None => total.unwrap_or(usize::MAX),
    };
    let end = end.max(start);
    let (start, end) = match (first, last) {
        (Some(first), _) => (start, end.min(start.saturating_add(first))),
        (None, Some(last)) => (end.saturating_sub(last).max(start), end),
        (None, None) => (start, end.min(start.saturating_add(DEFAULT_PAGE))),
    };
    Ok((start, end - start))
}

/// Builds a connection from one page of rows fetched with one extra row (to tell whether a next
/// page exists).
pub fn page<Node: async_graphql::OutputType>(
    mut rows: Vec<Node>,
    offset: usize,
    limit: usize,
    total: Option<i64>,
) -> Connection<usize, Node, ListTotals> {
    let has_next = rows.len() > limit;
    rows.truncate(limit);
    let mut connection = Connection::with_additional_fields(offset > 0, has_next, ListTotals { total_count: total });
    connection.edges.extend(rows.into_iter().enumerate().map(|(index, row)| Edge::new(offset + index, row)));
    connection
}


/// The filter a column gets, chosen by its SQL type: whole numbers get [`IntFilter`], text
/// [`TextFilter`], decimals [`FloatFilter`], booleans a plain `Boolean`. A column of a type
/// with no impl here cannot be declared on an entity (the build says which).
pub trait Filterable: diesel::sql_types::SqlType {
    type Input: async_graphql::InputType + Clone + Send + Sync;
}

/// The filter input of column `C`.
pub type FilterOf<C> = <<C as diesel::Expression>::SqlType as Filterable>::Input;

/// Narrows query `Q` by one column `C` of this SQL type. The conditions a type honours are
/// the API's contract: `isNull` only on nullable columns, `contains` only on non-null text,
/// ranges on numbers.
pub trait Narrow<C, Q>: Filterable {
    fn narrow(query: Q, column: C, filter: Option<&Self::Input>) -> Q;
}

/// Applies `filter` (if given) on `column` to `query`.
pub fn narrow<C, Q>(query: Q, column: C, filter: Option<&FilterOf<C>>) -> Q
where
    C: diesel::Expression,
    C::SqlType: Narrow<C, Q>,
{
    <C::SqlType as Narrow<C, Q>>::narrow(query, column, filter)
}

use diesel::dsl;
use diesel::query_dsl::methods::FilterDsl;
use diesel::sql_types::{BigInt, Bool, Double, Nullable, Text};
use diesel::{EscapeExpressionMethods as _, Expression, ExpressionMethods as _, TextExpressionMethods as _};

impl Filterable for BigInt {
    type Input = IntFilter;
}
impl Filterable for Nullable<BigInt> {
    type Input = IntFilter;
}
impl Filterable for Text {
    type Input = TextFilter;
}
impl Filterable for Nullable<Text> {
    type Input = TextFilter;
}
impl Filterable for Nullable<Double> {
    type Input = FloatFilter;
}
impl Filterable for Bool {
    type Input = bool;
}

/// Equality, `in` and ranges on a whole-number column, nullable or not.
fn int_conditions<C, Q>(mut query: Q, column: C, filter: &IntFilter) -> Q
where
    C: Expression + diesel::ExpressionMethods + Copy,
    C::SqlType: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType,
    i64: diesel::expression::AsExpression<C::SqlType>,
    Q: FilterDsl<dsl::Eq<C, i64>, Output = Q>
        + FilterDsl<dsl::EqAny<C, Vec<i64>>, Output = Q>
        + FilterDsl<dsl::Gt<C, i64>, Output = Q>
        + FilterDsl<dsl::GtEq<C, i64>, Output = Q>
        + FilterDsl<dsl::Lt<C, i64>, Output = Q>
        + FilterDsl<dsl::LtEq<C, i64>, Output = Q>,
{
    if let Some(value) = filter.eq {
        query = query.filter(column.eq(value));
    }
    if let Some(values) = &filter.in_list {
        query = query.filter(column.eq_any(values.clone()));
    }
    if let Some(value) = filter.gt {
        query = query.filter(column.gt(value));
    }
    if let Some(value) = filter.gte {
        query = query.filter(column.ge(value));
    }
    if let Some(value) = filter.lt {
        query = query.filter(column.lt(value));
    }
    if let Some(value) = filter.lte {
        query = query.filter(column.le(value));
    }
    query
}

/// `isNull: true` keeps rows without a value, `false` rows with one.
fn null_condition<C, Q>(query: Q, column: C, is_null: Option<bool>) -> Q
where
    C: Expression + diesel::ExpressionMethods,
    Q: FilterDsl<dsl::IsNull<C>, Output = Q> + FilterDsl<dsl::IsNotNull<C>, Output = Q>,
{
    match is_null {
        Some(true) => query.filter(column.is_null()),
        Some(false) => query.filter(column.is_not_null()),
        None => query,
    }
}

impl<C, Q> Narrow<C, Q> for BigInt
where
    C: Expression<SqlType = BigInt> + Copy,
    Q: FilterDsl<dsl::Eq<C, i64>, Output = Q>
        + FilterDsl<dsl::EqAny<C, Vec<i64>>, Output = Q>
        + FilterDsl<dsl::Gt<C, i64>, Output = Q>
        + FilterDsl<dsl::GtEq<C, i64>, Output = Q>
        + FilterDsl<dsl::Lt<C, i64>, Output = Q>
        + FilterDsl<dsl::LtEq<C, i64>, Output = Q>,
{
    fn narrow(query: Q, column: C, filter: Option<&IntFilter>) -> Q {
        match filter {
            Some(filter) => int_conditions(query, column, filter),
            None => query,
        }
    }
}

impl<C, Q> Narrow<C, Q> for Nullable<BigInt>
where
    C: Expression<SqlType = Nullable<BigInt>> + Copy,
    Q: FilterDsl<dsl::Eq<C, i64>, Output = Q>
        + FilterDsl<dsl::EqAny<C, Vec<i64>>, Output = Q>
        + FilterDsl<dsl::Gt<C, i64>, Output = Q>
        + FilterDsl<dsl::GtEq<C, i64>, Output = Q>
        + FilterDsl<dsl::Lt<C, i64>, Output = Q>
        + FilterDsl<dsl::LtEq<C, i64>, Output = Q>
        + FilterDsl<dsl::IsNull<C>, Output = Q>
        + FilterDsl<dsl::IsNotNull<C>, Output = Q>,
{
    fn narrow(query: Q, column: C, filter: Option<&IntFilter>) -> Q {
        let Some(filter) = filter else { return query };
        let query = int_conditions(query, column, filter);
        null_condition(query, column, filter.is_null)
    }
}

impl<C, Q> Narrow<C, Q> for Text
where
    C: Expression<SqlType = Text> + Copy,
    Q: FilterDsl<dsl::Eq<C, String>, Output = Q>
        + FilterDsl<dsl::EqAny<C, Vec<String>>, Output = Q>
        + FilterDsl<dsl::Escape<dsl::Like<lower<C>, String>>, Output = Q>,
{
    fn narrow(mut query: Q, column: C, filter: Option<&TextFilter>) -> Q {
        let Some(filter) = filter else { return query };
        if let Some(value) = &filter.eq {
            query = query.filter(column.eq(value.clone()));
        }
        if let Some(values) = &filter.in_list {
            query = query.filter(column.eq_any(values.clone()));
        }
        if let Some(text) = &filter.contains {
            query = query.filter(lower(column).like(contains_pattern(text)).escape('\\'));
        }
        query
    }
}

impl<C, Q> Narrow<C, Q> for Nullable<Text>
where
    C: Expression<SqlType = Nullable<Text>> + Copy,
    Q: FilterDsl<dsl::Eq<C, String>, Output = Q>
        + FilterDsl<dsl::EqAny<C, Vec<String>>, Output = Q>
        + FilterDsl<dsl::IsNull<C>, Output = Q>
        + FilterDsl<dsl::IsNotNull<C>, Output = Q>,
{
    fn narrow(mut query: Q, column: C, filter: Option<&TextFilter>) -> Q {
        let Some(filter) = filter else { return query };
        if let Some(value) = &filter.eq {
            query = query.filter(column.eq(value.clone()));
        }
        if let Some(values) = &filter.in_list {
            query = query.filter(column.eq_any(values.clone()));
        }
        null_condition(query, column, filter.is_null)
    }
}

impl<C, Q> Narrow<C, Q> for Nullable<Double>
where
    C: Expression<SqlType = Nullable<Double>> + Copy,
    Q: FilterDsl<dsl::Gt<C, f64>, Output = Q>
        + FilterDsl<dsl::GtEq<C, f64>, Output = Q>
        + FilterDsl<dsl::Lt<C, f64>, Output = Q>
        + FilterDsl<dsl::LtEq<C, f64>, Output = Q>
        + FilterDsl<dsl::IsNull<C>, Output = Q>
        + FilterDsl<dsl::IsNotNull<C>, Output = Q>,
{
    fn narrow(mut query: Q, column: C, filter: Option<&FloatFilter>) -> Q {
        let Some(filter) = filter else { return query };
        if let Some(value) = filter.gt {
            query = query.filter(column.gt(value));
        }
        if let Some(value) = filter.gte {
            query = query.filter(column.ge(value));
        }
        if let Some(value) = filter.lt {
            query = query.filter(column.lt(value));
        }
        if let Some(value) = filter.lte {
            query = query.filter(column.le(value));
        }
        null_condition(query, column, filter.is_null)
    }
}

impl<C, Q> Narrow<C, Q> for Bool
where
    C: Expression<SqlType = Bool> + Copy,
    Q: FilterDsl<dsl::Eq<C, bool>, Output = Q>,
{
    fn narrow(query: Q, column: C, filter: Option<&bool>) -> Q {
        match filter {
            Some(value) => query.filter(column.eq(*value)),
            None => query,
        }
    }
}
