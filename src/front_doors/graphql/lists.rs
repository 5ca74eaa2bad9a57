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

/// Applies one field's filter to a boxed diesel query.
macro_rules! apply_filter {
    (int, $query:ident, $column:expr, $filter:expr) => {
        if let Some(filter) = $filter {
            use diesel::ExpressionMethods as _;
            if let Some(value) = filter.eq {
                $query = $query.filter($column.eq(value));
            }
            if let Some(values) = &filter.in_list {
                $query = $query.filter($column.eq_any(values.clone()));
            }
            if let Some(value) = filter.gt {
                $query = $query.filter($column.gt(value));
            }
            if let Some(value) = filter.gte {
                $query = $query.filter($column.ge(value));
            }
            if let Some(value) = filter.lt {
                $query = $query.filter($column.lt(value));
            }
            if let Some(value) = filter.lte {
                $query = $query.filter($column.le(value));
            }
        }
    };
    (nullable_int, $query:ident, $column:expr, $filter:expr) => {
        $crate::front_doors::graphql::lists::apply_filter!(int, $query, $column, $filter);
        $crate::front_doors::graphql::lists::apply_filter!(@null, $query, $column, $filter);
    };
    (text, $query:ident, $column:expr, $filter:expr) => {
        if let Some(filter) = $filter {
            use diesel::{EscapeExpressionMethods as _, ExpressionMethods as _, TextExpressionMethods as _};
            if let Some(value) = &filter.eq {
                $query = $query.filter($column.eq(value.clone()));
            }
            if let Some(values) = &filter.in_list {
                $query = $query.filter($column.eq_any(values.clone()));
            }
            if let Some(text) = &filter.contains {
                $query = $query
                    .filter($crate::front_doors::graphql::lists::lower($column).like($crate::front_doors::graphql::lists::contains_pattern(text)).escape('\\'));
            }
        }
    };
    (nullable_text, $query:ident, $column:expr, $filter:expr) => {
        if let Some(filter) = $filter {
            use diesel::ExpressionMethods as _;
            if let Some(value) = &filter.eq {
                $query = $query.filter($column.eq(value.clone()));
            }
            if let Some(values) = &filter.in_list {
                $query = $query.filter($column.eq_any(values.clone()));
            }
        }
        $crate::front_doors::graphql::lists::apply_filter!(@null, $query, $column, $filter);
    };
    (nullable_float, $query:ident, $column:expr, $filter:expr) => {
        if let Some(filter) = $filter {
            use diesel::ExpressionMethods as _;
            if let Some(value) = filter.gt {
                $query = $query.filter($column.gt(value));
            }
            if let Some(value) = filter.gte {
                $query = $query.filter($column.ge(value));
            }
            if let Some(value) = filter.lt {
                $query = $query.filter($column.lt(value));
            }
            if let Some(value) = filter.lte {
                $query = $query.filter($column.le(value));
            }
        }
        $crate::front_doors::graphql::lists::apply_filter!(@null, $query, $column, $filter);
    };
    (bool, $query:ident, $column:expr, $filter:expr) => {
        if let Some(value) = $filter {
            use diesel::ExpressionMethods as _;
            $query = $query.filter($column.eq(*value));
        }
    };
    (@null, $query:ident, $column:expr, $filter:expr) => {
        if let Some(is_null) = $filter.as_ref().and_then(|filter| filter.is_null) {
            use diesel::ExpressionMethods as _;
            $query = if is_null { $query.filter($column.is_null()) } else { $query.filter($column.is_not_null()) };
        }
    };
}
pub(crate) use apply_filter;

/// The GraphQL input type of a filter kind.
macro_rules! filter_type {
    (int) => { Option<$crate::front_doors::graphql::lists::IntFilter> };
    (nullable_int) => { Option<$crate::front_doors::graphql::lists::IntFilter> };
    (text) => { Option<$crate::front_doors::graphql::lists::TextFilter> };
    (nullable_text) => { Option<$crate::front_doors::graphql::lists::TextFilter> };
    (nullable_float) => { Option<$crate::front_doors::graphql::lists::FloatFilter> };
    (bool) => { Option<bool> };
}
pub(crate) use filter_type;

/// Declares the root fields of one entity: `$list` (a connection) and `$one` (by key), with a
/// filter input (`$filter`: one optional condition per listed column) and an order input
/// (`$order` of `$order_field`: any listed column, ascending or descending; the key breaks ties).
macro_rules! entity_root {
    (
        $query:ident, $row:ty, $table:ident,
        list $list:ident, one $one:ident,
        key ($($key:ident: $key_type:ty),+),
        filter $filter:ident { $($filter_column:ident: $kind:ident),* $(,)? },
        order $order:ident / $order_field:ident { $($variant:ident => $order_column:ident),* $(,)? } $(,)?
    ) => {
        #[derive(async_graphql::InputObject, Default, Clone)]
        pub struct $filter {
            $(pub $filter_column: $crate::front_doors::graphql::lists::filter_type!($kind),)*
        }

        #[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
        pub enum $order_field {
            $($variant,)*
        }

        #[derive(async_graphql::InputObject, Clone)]
        pub struct $order {
            pub field: $order_field,
            #[graphql(default)]
            pub direction: $crate::front_doors::graphql::lists::Direction,
        }

        #[derive(Default)]
        pub struct $query;

        #[async_graphql::Object]
        impl $query {
            /// One page of rows, filtered and ordered (by key when no order is given).
            #[allow(clippy::too_many_arguments)]
            async fn $list(
                &self,
                ctx: &async_graphql::Context<'_>,
                filter: Option<$filter>,
                order_by: Option<Vec<$order>>,
                after: Option<String>,
                before: Option<String>,
                first: Option<i32>,
                last: Option<i32>,
            ) -> async_graphql::Result<async_graphql::connection::Connection<usize, $row, $crate::front_doors::graphql::lists::ListTotals>> {
                let db = ctx.data::<$crate::db::Database>()?;
                let filter = filter.unwrap_or_default();
                let order_by = order_by.unwrap_or_default();
                let want_total = ctx.look_ahead().field("totalCount").exists();
                async_graphql::connection::query(after, before, first, last, |after: Option<usize>, before: Option<usize>, first, last| async move {
                    let count = || async {
                        $crate::db::with_conn!(db, readers, |conn| {
                            #[allow(unused_imports)]
                            use diesel::QueryDsl as _;
                            #[allow(unused_mut)]
                            let mut query = $crate::db::schema::$table::table.into_boxed();
                            $($crate::front_doors::graphql::lists::apply_filter!($kind, query, $crate::db::schema::$table::$filter_column, &filter.$filter_column);)*
                            query.count().get_result::<i64>(conn).await.map_err($crate::db::DbError::Query)
                        })
                        .map_err($crate::front_doors::graphql::errors::database)
                    };
                    let total = if want_total || (last.is_some() && before.is_none()) { Some(Box::pin(count()).await?) } else { None };
                    let (offset, limit) = $crate::front_doors::graphql::lists::window(
                        after,
                        before,
                        first,
                        last,
                        total.map(|total| usize::try_from(total).unwrap_or(usize::MAX)),
                    )?;
                    let rows: Vec<$row> = Box::pin(async { $crate::db::with_conn!(db, readers, |conn| {
                        use diesel::{QueryDsl as _, SelectableHelper as _, ExpressionMethods as _};
                        #[allow(unused_mut)]
                        let mut query = $crate::db::schema::$table::table.select(<$row>::as_select()).into_boxed();
                        $($crate::front_doors::graphql::lists::apply_filter!($kind, query, $crate::db::schema::$table::$filter_column, &filter.$filter_column);)*
                        for order in &order_by {
                            let ascending = order.direction == $crate::front_doors::graphql::lists::Direction::Asc;
                            query = match order.field {
                                $($order_field::$variant => if ascending {
                                    query.then_order_by($crate::db::schema::$table::$order_column.asc())
                                } else {
                                    query.then_order_by($crate::db::schema::$table::$order_column.desc())
                                },)*
                            };
                        }
                        $(query = query.then_order_by($crate::db::schema::$table::$key.asc());)+
                        query
                            .offset(i64::try_from(offset).unwrap_or(i64::MAX))
                            .limit(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
                            .load(conn)
                            .await
                            .map_err($crate::db::DbError::Query)
                    }) })
                    .await
                    .map_err($crate::front_doors::graphql::errors::database)?;
                    Ok::<_, async_graphql::Error>($crate::front_doors::graphql::lists::page(rows, offset, limit, total))
                })
                .await
            }

            /// The row with this key, or `null`.
            async fn $one(
                &self,
                ctx: &async_graphql::Context<'_>,
                $($key: $key_type),+
            ) -> async_graphql::Result<Option<$row>> {
                let db = ctx.data::<$crate::db::Database>()?;
                $crate::db::with_conn!(db, readers, |conn| {
                    use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _};
                    $crate::db::schema::$table::table
                        $(.filter($crate::db::schema::$table::$key.eq($key.clone())))+
                        .select(<$row>::as_select())
                        .first(conn)
                        .await
                        .optional()
                        .map_err($crate::db::DbError::Query)
                })
                .map_err($crate::front_doors::graphql::errors::database)
            }
        }
    };
}
pub(crate) use entity_root;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Relay arguments map to offset and limit; oversized pages are refused.
    #[test]
    fn windows_follow_relay_arguments() {
        assert_eq!(window(None, None, None, None, None).unwrap(), (0, DEFAULT_PAGE));
        assert_eq!(window(Some(9), None, Some(5), None, None).unwrap(), (10, 5));
        assert_eq!(window(None, Some(10), None, Some(3), None).unwrap(), (7, 3));
        assert_eq!(window(None, None, None, Some(3), Some(50)).unwrap(), (47, 3));
        assert_eq!(window(Some(4), Some(6), Some(10), None, None).unwrap(), (5, 1));
        assert!(window(None, None, Some(MAX_PAGE + 1), None, None).is_err());
        assert_eq!(contains_pattern("50%_A"), "%50\\%\\_a%");
    }
}
