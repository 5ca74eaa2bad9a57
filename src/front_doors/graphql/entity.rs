//! An entity's whole GraphQL surface, derived from its declaration next to its row struct.
//!
//! A source declares each row type once with [`entity!`]: the struct (its fields are the
//! table's columns), its key, its root field names and its relations. From that come the
//! GraphQL object, the `…Filter` input (one condition per column, its kind chosen by the
//! column's SQL type through [`Filterable`](super::lists::Filterable)), the `…Order` input,
//! the root list and lookup, and batched relation resolvers. Relations a source adds to
//! another source's entity (`Item.droppedAt` belongs to `locations`, which owns the link
//! table) are declared with [`links!`]. The registry names every entity once, with the
//! sources that add to it, in [`entity_schema!`]: that list is the query root and decides
//! the order of the added fields.
//!
//! Every list and relation resolver computes the [`Projection`] its query reads — the key, the
//! selected columns and the columns selected relations need — and selects only those: the
//! row decodes from them in field order ([`read_next`]), every other field keeping its type's
//! default, which nobody is shown because GraphQL serializes only the selected fields.
//! `{ items { nodes { id name } } }` so moves 2 of the 58 `items` columns, not 58.

use std::collections::BTreeSet;

use async_graphql::SelectionField;

/// A row type served over GraphQL. Implemented by [`entity!`].
pub trait Entity: Clone + Send + Sync + 'static + async_graphql::OutputType {
    /// The table's columns, as the row struct's fields name them.
    const COLUMNS: &'static [&'static str];
    /// The key columns: every projection reads them, and related lists are ordered by them.
    const KEY: &'static [&'static str];
    /// The root fields (list and lookup by key).
    type Roots: async_graphql::ObjectType + Default;
    /// The relations declared with the entity.
    type Relations: Relations<Self>;

    /// The key columns joined with `/` (as in the change feed).
    fn row_key(&self) -> String;

    /// The select list of a query reading `columns`: those of the row's fields, in field
    /// order, which is the order the row decodes them in.
    fn select_list(columns: &Projection) -> String;
}

/// The next field of a row decoding from a projected select list: the value of the result's
/// column `*next` when that column is `column` (the field is selected), else the field's
/// default (it is not). Fields are read in declaration order, the select list's order, so
/// each field looks at one column name: a row of many columns decodes as fast as by position.
pub fn read_next<'a, ST, T, DB>(
    row: &impl diesel::row::Row<'a, DB>,
    next: &mut usize,
    column: &str,
) -> diesel::deserialize::Result<T>
where
    DB: diesel::backend::Backend,
    T: diesel::deserialize::FromSql<ST, DB> + Default,
{
    use diesel::row::Field as _;
    match row.get(*next) {
        Some(field) if field.field_name() == Some(column) => {
            *next += 1;
            T::from_nullable_sql(field.value())
        }
        _ => Ok(T::default()),
    }
}

/// Writes a select list: each of `fields` that `columns` reads, quoted (a column may be named
/// like a keyword: `level`, `day`), in the order given.
pub fn write_select_list(columns: &Projection, fields: &[&str]) -> String {
    let mut list = String::with_capacity(fields.len() * 8);
    for column in fields.iter().filter(|column| columns.contains(column)) {
        if !list.is_empty() {
            list.push_str(", ");
        }
        list.push('"');
        list.push_str(column);
        list.push('"');
    }
    list
}

/// The relations other sources add to an entity, gathered by [`entity_schema!`].
pub trait Extended: Entity {
    /// The columns of this entity an added relation named `field` (GraphQL name) reads.
    fn link_columns(field: &str) -> Option<Vec<&'static str>>;
}

/// A group of relation fields on rows of `R`: the entity's own, or those one source adds.
pub trait Relations<R> {
    fn fields(registry: &mut async_graphql::registry::Registry) -> Vec<(String, async_graphql::registry::MetaField)>;
    fn resolve(
        row: &R,
        ctx: &async_graphql::Context<'_>,
    ) -> impl std::future::Future<Output = async_graphql::ServerResult<Option<async_graphql::Value>>> + Send;
    /// The columns of `R` the relation named `field` (GraphQL name) reads, if it is one of these.
    fn columns(field: &str) -> Option<Vec<&'static str>>;
}

/// The fields of a generated relation object, to splice into an entity's object.
pub fn fields_of<T: async_graphql::OutputType>(
    registry: &mut async_graphql::registry::Registry,
) -> Vec<(String, async_graphql::registry::MetaField)> {
    match registry.create_fake_output_type::<T>() {
        async_graphql::registry::MetaType::Object { fields, .. } => fields.into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Maps a diesel table to the entity stored in it, so a relation names its target by table.
pub trait EntityTable {
    type Row: Extended;
}

/// The entity stored in table `T`.
pub type RowOf<T> = <T as EntityTable>::Row;

/// The Rust type a key or batching column's values have, chosen by its SQL type.
pub trait Keyed {
    type Key: Clone + Eq + std::hash::Hash + Send + Sync + 'static + async_graphql::InputType;
}

impl Keyed for diesel::sql_types::BigInt {
    type Key = i64;
}
impl Keyed for diesel::sql_types::Nullable<diesel::sql_types::BigInt> {
    type Key = i64;
}
impl Keyed for diesel::sql_types::Text {
    type Key = String;
}
impl Keyed for diesel::sql_types::Nullable<diesel::sql_types::Text> {
    type Key = String;
}

/// The key type of column `C`.
pub type KeyOf<C> = <<C as diesel::Expression>::SqlType as Keyed>::Key;

/// The key a row's field offers a relation: nothing for a NULL.
pub trait Lookup<K> {
    fn lookup(&self) -> Option<K>;
}

impl Lookup<i64> for i64 {
    fn lookup(&self) -> Option<i64> {
        Some(*self)
    }
}
impl Lookup<i64> for Option<i64> {
    fn lookup(&self) -> Option<i64> {
        *self
    }
}
impl Lookup<String> for String {
    fn lookup(&self) -> Option<String> {
        Some(self.clone())
    }
}
impl Lookup<String> for Option<String> {
    fn lookup(&self) -> Option<String> {
        self.clone()
    }
}

/// How many rows a relation gives: `one` (the first, or `null`) or `many` (a list).
pub trait Cardinality {
    type Output<R>;
    fn from_rows<R>(rows: Vec<R>) -> Self::Output<R>;
}

/// The cardinalities a relation declaration names.
#[expect(non_camel_case_types, reason = "named as the declarations write them: `one`, `many`")]
pub mod cardinality {
    pub struct one;
    pub struct many;
}

impl Cardinality for cardinality::one {
    type Output<R> = Option<R>;
    fn from_rows<R>(rows: Vec<R>) -> Option<R> {
        rows.into_iter().next()
    }
}

impl Cardinality for cardinality::many {
    type Output<R> = Vec<R>;
    fn from_rows<R>(rows: Vec<R>) -> Vec<R> {
        rows
    }
}

/// Whether GraphQL field name `graphql` is the camel-case form of Rust name `snake`, as
/// async-graphql renames fields (`mastery_count_1` is `masteryCount1`).
pub fn names_match(graphql: &str, snake: &str) -> bool {
    let mut graphql = graphql.chars();
    let mut upper_next = false;
    for c in snake.chars() {
        if c == '_' {
            upper_next = true;
            continue;
        }
        let expected = if upper_next { c.to_ascii_uppercase() } else { c };
        upper_next = false;
        if graphql.next() != Some(expected) {
            return false;
        }
    }
    graphql.next().is_none()
}

/// The columns of one entity a query reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection(BTreeSet<&'static str>);

impl Projection {
    pub fn columns(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }

    pub fn contains(&self, column: &str) -> bool {
        self.0.contains(column)
    }

    /// Adds every column of `other` (another query of the same batch).
    pub fn add(&mut self, other: &Projection) {
        self.0.extend(other.0.iter().copied());
    }

    /// What a selection set on `E` reads: the key, every selected column, and the columns
    /// each selected relation follows (an item's `cookingRecipe` reads `cooking_recipe_id`).
    pub fn of<'a, E: Extended>(selection: impl Iterator<Item = SelectionField<'a>>) -> Self {
        let mut columns: BTreeSet<&'static str> = E::KEY.iter().copied().collect();
        for field in selection {
            let name = field.name();
            if let Some(column) = E::COLUMNS.iter().find(|column| names_match(name, column)) {
                columns.insert(column);
            } else if let Some(read) = <E::Relations as Relations<E>>::columns(name).or_else(|| E::link_columns(name)) {
                columns.extend(read);
            }
        }
        Self(columns)
    }

    /// What a connection field on `E` reads through its `nodes` and `edges { node }`.
    pub fn for_connection<E: Extended>(field: SelectionField<'_>) -> Self {
        let nodes = field.selection_set().flat_map(|child| match child.name() {
            "nodes" => child.selection_set().collect::<Vec<_>>(),
            "edges" => child
                .selection_set()
                .filter(|grandchild| grandchild.name() == "node")
                .flat_map(|node| node.selection_set().collect::<Vec<_>>())
                .collect(),
            _ => Vec::new(),
        });
        Self::of::<E>(nodes)
    }

    /// What a relation field whose rows are `E` reads: its selection, plus `reads` (the
    /// batching column and those the relation narrows on).
    pub fn for_relation<E: Extended>(field: SelectionField<'_>, reads: &[&'static str]) -> Self {
        let mut projection = Self::of::<E>(field.selection_set());
        projection.0.extend(reads.iter().copied());
        projection
    }
}

/// Declares an entity: its row struct, key, root fields and relations; see the module header.
///
/// ```ignore
/// entity! {
///     #[diesel(table_name = tower_levels)]
///     #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
///     pub struct TowerLevel { pub level: i64, pub silver: Option<i64> }
///     key (level);
///     roots (tower_levels, tower_level);
///     relations {
///         /// This level's item rewards.
///         rewards: many tower_rewards.level = level;
///     }
/// }
/// ```
///
/// The `#[diesel(table_name = …)]` attribute comes first. A relation is `name: one|many
/// table.column = field`: the rows of `table` whose `column` equals this row's `field`, in
/// one batch per request and level; `, column = field` or `, column = "literal"` narrows
/// further (in memory, after the batch), and `name(column)` adds an optional argument that
/// narrows on `column`.
macro_rules! entity {
    (
        #[diesel(table_name = $table:ident)]
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $field_type:ty),* $(,)?
        }
        key ($($key:ident),+ $(,)?);
        roots ($list:ident, $one:ident);
        relations { $($relations:tt)* }
    ) => {
        $(#[$meta])*
        #[diesel(table_name = $crate::db::schema::$table)]
        #[derive(async_graphql::SimpleObject)]
        #[graphql(complex)]
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $field_type,)*
        }

        impl $crate::front_doors::graphql::entity::EntityTable for $crate::db::schema::$table::table {
            type Row = $name;
        }

        // GraphQL's rows decode from a projected select list, field by field in order (see
        // `read_next`); a field not selected keeps its default.
        impl<DB: diesel::backend::Backend> diesel::deserialize::QueryableByName<DB> for $name
        where
            $($field_type: diesel::deserialize::FromSql<diesel::dsl::SqlTypeOf<$crate::db::schema::$table::$field>, DB>,)*
        {
            fn build<'a>(row: &impl diesel::row::NamedRow<'a, DB>) -> diesel::deserialize::Result<Self> {
                let mut next = 0;
                Ok(Self {
                    $($field: $crate::front_doors::graphql::entity::read_next::<
                        diesel::dsl::SqlTypeOf<$crate::db::schema::$table::$field>, _, DB,
                    >(row, &mut next, stringify!($field))?,)*
                })
            }
        }

        const _: () = {
            use $crate::front_doors::graphql::lists::{Direction, FilterOf, ListTotals};

            #[derive(async_graphql::InputObject, Default, Clone)]
            #[graphql(name_type)]
            pub struct Filter {
                $(pub $field: Option<FilterOf<$crate::db::schema::$table::$field>>,)*
            }

            impl async_graphql::TypeName for Filter {
                fn type_name() -> std::borrow::Cow<'static, str> {
                    std::borrow::Cow::Borrowed(concat!(stringify!($name), "Filter"))
                }
            }

            #[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
            #[graphql(name_type)]
            #[allow(non_camel_case_types)]
            pub enum OrderField {
                $($field,)*
            }

            impl async_graphql::TypeName for OrderField {
                fn type_name() -> std::borrow::Cow<'static, str> {
                    std::borrow::Cow::Borrowed(concat!(stringify!($name), "OrderField"))
                }
            }

            #[derive(async_graphql::InputObject, Clone)]
            #[graphql(name_type)]
            pub struct Order {
                pub field: OrderField,
                #[graphql(default)]
                pub direction: Direction,
            }

            impl async_graphql::TypeName for Order {
                fn type_name() -> std::borrow::Cow<'static, str> {
                    std::borrow::Cow::Borrowed(concat!(stringify!($name), "Order"))
                }
            }

            #[derive(Default)]
            pub struct Roots;

            impl async_graphql::TypeName for Roots {
                fn type_name() -> std::borrow::Cow<'static, str> {
                    std::borrow::Cow::Borrowed(concat!(stringify!($name), "Roots"))
                }
            }

            impl Roots {
                async fn count(db: &$crate::db::Database, filter: &Filter) -> Result<i64, $crate::db::DbError> {
                    $crate::db::with_conn!(db, readers, |conn| {
                        use diesel::QueryDsl as _;
                        let query = $crate::db::schema::$table::table.into_boxed();
                        $(let query = $crate::front_doors::graphql::lists::narrow(
                            query,
                            $crate::db::schema::$table::$field,
                            filter.$field.as_ref(),
                        );)*
                        query.count().get_result::<i64>(conn).await.map_err($crate::db::DbError::Query)
                    })
                }

                /// One page of rows, reading only `columns` (the other fields keep their defaults).
                async fn load_page(
                    db: &$crate::db::Database,
                    filter: &Filter,
                    order_by: &[Order],
                    (offset, limit): (usize, usize),
                    columns: &$crate::front_doors::graphql::entity::Projection,
                ) -> Result<Vec<$name>, $crate::db::DbError> {
                    use $crate::front_doors::graphql::entity::Entity as _;
                    let list = <$name>::select_list(columns);
                    $crate::db::with_conn!(db, readers, |conn| {
                        use diesel::{ExpressionMethods as _, QueryDsl as _};
                        let query = $crate::db::schema::$table::table
                            .select(diesel::dsl::sql::<diesel::sql_types::Untyped>(&list))
                            .into_boxed();
                        $(let query = $crate::front_doors::graphql::lists::narrow(
                            query,
                            $crate::db::schema::$table::$field,
                            filter.$field.as_ref(),
                        );)*
                        let mut query = query;
                        for order in order_by {
                            let ascending = order.direction == Direction::Asc;
                            query = match order.field {
                                $(OrderField::$field => if ascending {
                                    query.then_order_by($crate::db::schema::$table::$field.asc())
                                } else {
                                    query.then_order_by($crate::db::schema::$table::$field.desc())
                                },)*
                            };
                        }
                        $(query = query.then_order_by($crate::db::schema::$table::$key.asc());)+
                        query
                            .offset(i64::try_from(offset).unwrap_or(i64::MAX))
                            .limit(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
                            .load::<$name>(conn)
                            .await
                            .map_err($crate::db::DbError::Query)
                    })
                }

                /// The row with this key, reading `columns` as [`Self::load_page`] does.
                async fn load_one(
                    db: &$crate::db::Database,
                    ($($key,)+): ($($crate::front_doors::graphql::entity::KeyOf<$crate::db::schema::$table::$key>,)+),
                    columns: &$crate::front_doors::graphql::entity::Projection,
                ) -> Result<Option<$name>, $crate::db::DbError> {
                    use $crate::front_doors::graphql::entity::Entity as _;
                    let list = <$name>::select_list(columns);
                    $crate::db::with_conn!(db, readers, |conn| {
                        use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
                        $crate::db::schema::$table::table
                            $(.filter($crate::db::schema::$table::$key.eq($key.clone())))+
                            .select(diesel::dsl::sql::<diesel::sql_types::Untyped>(&list))
                            .first::<$name>(conn)
                            .await
                            .optional()
                            .map_err($crate::db::DbError::Query)
                    })
                }
            }

            #[async_graphql::Object(name_type)]
            impl Roots {
                /// One page of rows, filtered and ordered (by key when no order is given).
                #[allow(clippy::too_many_arguments)]
                async fn $list(
                    &self,
                    ctx: &async_graphql::Context<'_>,
                    filter: Option<Filter>,
                    order_by: Option<Vec<Order>>,
                    after: Option<String>,
                    before: Option<String>,
                    first: Option<i32>,
                    last: Option<i32>,
                ) -> async_graphql::Result<async_graphql::connection::Connection<usize, $name, ListTotals>> {
                    let columns = $crate::front_doors::graphql::entity::Projection::for_connection::<$name>(ctx.field());
                    let db = ctx.data::<$crate::db::Database>()?;
                    let filter = filter.unwrap_or_default();
                    let order_by = order_by.unwrap_or_default();
                    let look_ahead = ctx.look_ahead();
                    let want_total = look_ahead.field("totalCount").exists();
                    // `{ totalCount }` alone runs only the count.
                    let want_rows = ["nodes", "edges", "pageInfo"].iter().any(|field| look_ahead.field(field).exists());
                    async_graphql::connection::query(
                        after,
                        before,
                        first,
                        last,
                        |after: Option<usize>, before: Option<usize>, first, last| async move {
                            let total = if want_total || (last.is_some() && before.is_none()) {
                                Some(
                                    Box::pin(Self::count(db, &filter))
                                        .await
                                        .map_err($crate::front_doors::graphql::errors::database)?,
                                )
                            } else {
                                None
                            };
                            let (offset, limit) = $crate::front_doors::graphql::lists::window(
                                after,
                                before,
                                first,
                                last,
                                total.map(|total| usize::try_from(total).unwrap_or(usize::MAX)),
                            )?;
                            let rows = if want_rows {
                                Box::pin(Self::load_page(db, &filter, &order_by, (offset, limit), &columns))
                                    .await
                                    .map_err($crate::front_doors::graphql::errors::database)?
                            } else {
                                Vec::new()
                            };
                            Ok::<_, async_graphql::Error>($crate::front_doors::graphql::lists::page(
                                rows, offset, limit, total,
                            ))
                        },
                    )
                    .await
                }

                /// The row with this key, or `null`.
                async fn $one(
                    &self,
                    ctx: &async_graphql::Context<'_>,
                    $($key: $crate::front_doors::graphql::entity::KeyOf<$crate::db::schema::$table::$key>),+
                ) -> async_graphql::Result<Option<$name>> {
                    let columns = $crate::front_doors::graphql::entity::Projection::of::<$name>(ctx.field().selection_set());
                    let db = ctx.data::<$crate::db::Database>()?;
                    Self::load_one(db, ($($key,)+), &columns).await.map_err($crate::front_doors::graphql::errors::database)
                }
            }

            pub struct Own;
            $crate::front_doors::graphql::entity::relation_group!($name, Own, concat!(stringify!($name), "Relations"); $($relations)*);

            impl $crate::front_doors::graphql::entity::Entity for $name {
                const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];
                const KEY: &'static [&'static str] = &[$(stringify!($key)),+];
                type Roots = Roots;
                type Relations = Own;

                fn row_key(&self) -> String {
                    [$(self.$key.to_string()),+].join("/")
                }

                fn select_list(columns: &$crate::front_doors::graphql::entity::Projection) -> String {
                    $crate::front_doors::graphql::entity::write_select_list(columns, &[$(stringify!($field)),*])
                }
            }
        };
    };
}
pub(crate) use entity;

/// Declares the relations a source adds to other sources' entities, as `links::<Entity>`
/// (the registry's [`entity_schema!`] list splices them in). Relations are written as in
/// [`entity!`]; the entity's row type must be in scope.
///
/// ```ignore
/// links! {
///     Item {
///         /// Tower levels that reward this item.
///         tower_rewards: many tower_rewards.item_id = id;
///     }
/// }
/// ```
macro_rules! links {
    ($($target:ident { $($relations:tt)* })*) => {
        /// The relations this source adds to other sources' entities.
        pub mod links {
            $(
                pub struct $target;
                const _: () = {
                    $crate::front_doors::graphql::entity::relation_group!(
                        super::$target,
                        $target,
                        format!("{}Links{}", stringify!($target), module_path!().replace("::", "_"));
                        $($relations)*
                    );
                };
            )*
        }
    };
}
pub(crate) use links;

/// The object of one group of relations on `$row`, behind marker `$marker` (see [`Relations`]).
/// `$type_name` only has to be unique: the object's fields are spliced into the entity's.
macro_rules! relation_group {
    ($row:ty, $marker:ident, $type_name:expr; ) => {
        impl $crate::front_doors::graphql::entity::Relations<$row> for $marker {
            fn fields(
                _registry: &mut async_graphql::registry::Registry,
            ) -> Vec<(String, async_graphql::registry::MetaField)> {
                Vec::new()
            }
            async fn resolve(
                _row: &$row,
                _ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::ServerResult<Option<async_graphql::Value>> {
                Ok(None)
            }
            fn columns(_field: &str) -> Option<Vec<&'static str>> {
                None
            }
        }
    };
    ($row:ty, $marker:ident, $type_name:expr;
        $(
            $(#[$doc:meta])*
            $relation:ident $(($narrow:ident))? : $cardinality:ident $target:ident . $by:ident = $from:ident
                $(, $also:ident = $also_value:tt)* ;
        )+
    ) => {
        pub struct View<'a>(&'a $row);

        impl async_graphql::TypeName for View<'_> {
            fn type_name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::from($type_name)
            }
        }

        #[async_graphql::Object(name_type)]
        impl View<'_> {
            $(
                $(#[$doc])*
                async fn $relation(
                    &self,
                    ctx: &async_graphql::Context<'_>,
                    $($narrow: Option<$crate::front_doors::graphql::entity::KeyOf<$crate::db::schema::$target::$narrow>>,)?
                ) -> async_graphql::Result<
                    <$crate::front_doors::graphql::entity::cardinality::$cardinality as $crate::front_doors::graphql::entity::Cardinality>::Output<
                        $crate::front_doors::graphql::entity::RowOf<$crate::db::schema::$target::table>,
                    >,
                > {
                    use $crate::front_doors::graphql::entity::{KeyOf, Lookup as _, Projection, RowOf};
                    type Target = RowOf<$crate::db::schema::$target::table>;
                    type Key = KeyOf<$crate::db::schema::$target::$by>;
                    /// The batch's rows, reading the columns its queries read.
                    fn fetch(
                        db: $crate::db::Database,
                        keys: Vec<Key>,
                        columns: Projection,
                    ) -> futures::future::BoxFuture<'static, Result<Vec<Target>, String>> {
                        Box::pin(async move {
                            use diesel::{ExpressionMethods as _, QueryDsl as _};
                            use $crate::front_doors::graphql::entity::Entity;
                            let list = <Target as Entity>::select_list(&columns);
                            $crate::db::with_conn!(&db, readers, |conn| {
                                $crate::db::schema::$target::table
                                    .filter($crate::db::schema::$target::$by.eq_any(keys))
                                    .select(diesel::dsl::sql::<diesel::sql_types::Untyped>(&list))
                                    .load::<Target>(conn)
                                    .await
                                    .map_err($crate::db::DbError::Query)
                            })
                            .map_err(|error| error.to_string())
                        })
                    }
                    fn key_of(row: &Target) -> Option<Key> {
                        row.$by.lookup()
                    }
                    let via = $crate::front_doors::graphql::loaders::Via {
                        column: stringify!($by),
                        reads: &[stringify!($by) $(, stringify!($also))* $(, stringify!($narrow))?],
                        fetch,
                        key_of,
                    };
                    let columns = Projection::for_relation::<Target>(ctx.field(), via.reads);
                    let loaders = ctx.data_unchecked::<$crate::front_doors::graphql::loaders::Loaders>();
                    #[allow(unused_mut)]
                    let mut rows = loaders.many(&via, self.0.$from.lookup(), &columns).await?;
                    $(rows.retain(|row| row.$also == $crate::front_doors::graphql::entity::relation_group!(@value self.0, $also_value));)*
                    $(if let Some($narrow) = $narrow {
                        rows.retain(|row| row.$narrow == $narrow);
                    })?
                    Ok(<$crate::front_doors::graphql::entity::cardinality::$cardinality as $crate::front_doors::graphql::entity::Cardinality>::from_rows(rows))
                }
            )+
        }

        impl $crate::front_doors::graphql::entity::Relations<$row> for $marker {
            fn fields(
                registry: &mut async_graphql::registry::Registry,
            ) -> Vec<(String, async_graphql::registry::MetaField)> {
                $crate::front_doors::graphql::entity::fields_of::<View<'static>>(registry)
            }
            async fn resolve(
                row: &$row,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::ServerResult<Option<async_graphql::Value>> {
                async_graphql::ContainerType::resolve_field(&View(row), ctx).await
            }
            fn columns(field: &str) -> Option<Vec<&'static str>> {
                $(if $crate::front_doors::graphql::entity::names_match(field, stringify!($relation)) {
                    #[allow(unused_mut)]
                    let mut columns = vec![stringify!($from)];
                    $($crate::front_doors::graphql::entity::relation_group!(@column columns, $also_value);)*
                    return Some(columns);
                })+
                None
            }
        }
    };
    (@value $parent:expr, $literal:literal) => { $literal };
    (@value $parent:expr, $field:ident) => { $parent.$field };
    (@column $columns:ident, $literal:literal) => {};
    (@column $columns:ident, $field:ident) => { $columns.push(stringify!($field)) };
}
pub(crate) use relation_group;

/// The registry's list of every entity, in the query root's order, each with the sources
/// that add relations to it (in the order of its fields). Declares `$query`, the root fields
/// of every entity, and gives each entity its relation fields: its own, then each source's.
/// An entity missing here does not build (its relations have no resolver).
macro_rules! entity_schema {
    (
        $(#[$meta:meta])*
        $vis:vis struct $query:ident {
            $($entity:ident $(+ [$($source:ident),* $(,)?])?),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(async_graphql::MergedObject, Default)]
        $vis struct $query($(<$entity as $crate::front_doors::graphql::entity::Entity>::Roots),*);

        $(
            impl async_graphql::ComplexObject for $entity {
                fn fields(
                    registry: &mut async_graphql::registry::Registry,
                ) -> Vec<(String, async_graphql::registry::MetaField)> {
                    use $crate::front_doors::graphql::entity::{Entity, Relations};
                    #[allow(unused_mut)]
                    let mut fields = <<$entity as Entity>::Relations as Relations<$entity>>::fields(registry);
                    $($(fields.extend(<$source::links::$entity as Relations<$entity>>::fields(registry));)*)?
                    fields
                }

                async fn resolve_field(
                    &self,
                    ctx: &async_graphql::Context<'_>,
                ) -> async_graphql::ServerResult<Option<async_graphql::Value>> {
                    use $crate::front_doors::graphql::entity::{Entity, Relations};
                    if let Some(value) = <<$entity as Entity>::Relations as Relations<$entity>>::resolve(self, ctx).await? {
                        return Ok(Some(value));
                    }
                    $($(if let Some(value) = <$source::links::$entity as Relations<$entity>>::resolve(self, ctx).await? {
                        return Ok(Some(value));
                    })*)?
                    Ok(None)
                }
            }

            impl $crate::front_doors::graphql::entity::Extended for $entity {
                fn link_columns(field: &str) -> Option<Vec<&'static str>> {
                    $($(if let Some(columns) =
                        <$source::links::$entity as $crate::front_doors::graphql::entity::Relations<$entity>>::columns(field)
                    {
                        return Some(columns);
                    })*)?
                    let _ = field;
                    None
                }
            }
        )*

        /// Every entity's GraphQL type name and columns, in the query root's order.
        pub const GRAPHQL_ENTITIES: &[(&str, &[&str])] =
            &[$((stringify!($entity), <$entity as $crate::front_doors::graphql::entity::Entity>::COLUMNS)),*];
    };
}
pub(crate) use entity_schema;

#[cfg(test)]
mod tests {
    use super::{Entity as _, Projection};
    use crate::pipelines::items::rows::Item;

    #[test]
    fn a_select_list_names_the_projected_columns_in_field_order() {
        // In projection order `cooking_recipe_id` sorts first; the list follows the fields.
        let columns = Projection(["cooking_recipe_id", "id", "name"].into_iter().collect());
        assert_eq!(Item::select_list(&columns), "\"id\", \"name\", \"cooking_recipe_id\"");
        assert!(Item::COLUMNS.len() > 50, "the other {} columns stay in the table", Item::COLUMNS.len() - 3);
    }
}
