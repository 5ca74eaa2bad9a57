//! Relations of every loaded entity, navigable in both directions: an item's recipe
//! ingredients and the items it is an ingredient of, the NPCs who love it, the locations that
//! drop it, the tower levels and passwords that give it... Each goes through a batcher (see `loaders`).
//!
//! References to items from other sources are plain ids (see the sources' migration): an id
//! the item list does not have yet resolves to `null`.

use async_graphql::{ComplexObject, Context, Result};

use super::loaders::{many, one, Loaders};
use crate::pipelines::cards::{CardCombo, CardComboCard};
use crate::pipelines::community::CommunityGoal;
use crate::pipelines::exchange::ExchangeOffer;
use crate::pipelines::gallery::ProfileBackground;
use crate::pipelines::item_pages::{ItemDetail, ItemSource};
use crate::pipelines::items::rows::{Item, LocksmithContent, RecipeIngredient, SeedCrop, WellOutput};
use crate::pipelines::locations::{Location, LocationDrop};
use crate::pipelines::npc_pages::NpcProfile;
use crate::pipelines::npcs::{Npc, NpcItem, NpcReward, NpcRewardItem};
use crate::pipelines::passwords::{Password, PasswordReward};
use crate::pipelines::tent::TentOffer;
use crate::pipelines::tower::{TowerLevel, TowerReward};
use crate::pipelines::updates::{GameUpdate, GameUpdateItem};

fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

/// The location of `(location_type, id)`: locations load by id, then the type picks.
async fn location(ctx: &Context<'_>, location_type: &str, id: i64) -> Result<Option<Location>> {
    let found = many(&loaders(ctx).locations_by_id, id).await?;
    Ok(found.into_iter().find(|location| location.location_type == location_type))
}

#[ComplexObject]
impl Item {
    /// What this item is crafted or cooked from.
    async fn recipe_ingredients(&self, ctx: &Context<'_>) -> Result<Vec<RecipeIngredient>> {
        many(&loaders(ctx).recipes_by_item, self.id).await
    }
    /// Recipes this item is an ingredient of.
    async fn ingredient_of(&self, ctx: &Context<'_>) -> Result<Vec<RecipeIngredient>> {
        many(&loaders(ctx).recipes_by_ingredient, self.id).await
    }
    /// The recipe item that teaches cooking this dish.
    async fn cooking_recipe(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, self.cooking_recipe_id).await
    }
    /// The dishes this recipe item teaches.
    async fn teaches(&self, ctx: &Context<'_>) -> Result<Vec<Item>> {
        many(&loaders(ctx).items_by_cooking_recipe, self.id).await
    }
    /// The key that opens this chest.
    async fn loot_key(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, self.loot_key_id).await
    }
    /// The chests this key opens.
    async fn opens(&self, ctx: &Context<'_>) -> Result<Vec<Item>> {
        many(&loaders(ctx).items_by_loot_key, self.id).await
    }
    /// What this openable contains (locksmith).
    async fn contents(&self, ctx: &Context<'_>) -> Result<Vec<LocksmithContent>> {
        many(&loaders(ctx).contents_by_container, self.id).await
    }
    /// The openables that contain this item.
    async fn contained_in(&self, ctx: &Context<'_>) -> Result<Vec<LocksmithContent>> {
        many(&loaders(ctx).contents_by_item, self.id).await
    }
    /// Crops this seed can grow.
    async fn crops(&self, ctx: &Context<'_>) -> Result<Vec<SeedCrop>> {
        many(&loaders(ctx).crops_by_seed, self.id).await
    }
    /// Seeds that grow this crop.
    async fn grown_from(&self, ctx: &Context<'_>) -> Result<Vec<SeedCrop>> {
        many(&loaders(ctx).seeds_by_crop, self.id).await
    }
    /// What the wishing well gives for this item.
    async fn well_outputs(&self, ctx: &Context<'_>) -> Result<Vec<WellOutput>> {
        many(&loaders(ctx).well_by_item, self.id).await
    }
    /// Items the wishing well turns into this one.
    async fn well_inputs(&self, ctx: &Context<'_>) -> Result<Vec<WellOutput>> {
        many(&loaders(ctx).well_by_output, self.id).await
    }
    /// NPCs that give, like, love, hate or can be given this item (`relation` narrows it).
    async fn npc_relations(&self, ctx: &Context<'_>, relation: Option<String>) -> Result<Vec<NpcItem>> {
        let mut rows = many(&loaders(ctx).npc_items_by_item, self.id).await?;
        if let Some(relation) = relation {
            rows.retain(|row| row.relation == relation);
        }
        Ok(rows)
    }
    /// NPC friendship rewards that give this item.
    async fn npc_rewards(&self, ctx: &Context<'_>) -> Result<Vec<NpcRewardItem>> {
        many(&loaders(ctx).reward_items_by_item, self.id).await
    }
    /// Locations where this item is found.
    async fn dropped_at(&self, ctx: &Context<'_>) -> Result<Vec<LocationDrop>> {
        many(&loaders(ctx).drops_by_item, self.id).await
    }
    /// Tower levels that reward this item.
    async fn tower_rewards(&self, ctx: &Context<'_>) -> Result<Vec<TowerReward>> {
        many(&loaders(ctx).tower_rewards_by_item, self.id).await
    }
    /// Passwords that reward this item.
    async fn password_rewards(&self, ctx: &Context<'_>) -> Result<Vec<PasswordReward>> {
        many(&loaders(ctx).password_rewards_by_item, self.id).await
    }
    /// Community-center days whose goal was this item.
    async fn community_goals(&self, ctx: &Context<'_>) -> Result<Vec<CommunityGoal>> {
        many(&loaders(ctx).goals_by_goal_item, self.id).await
    }
    /// Community-center days that rewarded this item.
    async fn community_rewards(&self, ctx: &Context<'_>) -> Result<Vec<CommunityGoal>> {
        many(&loaders(ctx).goals_by_reward_item, self.id).await
    }
    /// Exchange offers that take this item.
    async fn exchange_offers_taking(&self, ctx: &Context<'_>) -> Result<Vec<ExchangeOffer>> {
        many(&loaders(ctx).offers_by_give, self.id).await
    }
    /// Exchange offers that give this item.
    async fn exchange_offers_giving(&self, ctx: &Context<'_>) -> Result<Vec<ExchangeOffer>> {
        many(&loaders(ctx).offers_by_receive, self.id).await
    }
    /// House of Cards combinations that reward this item.
    async fn card_combos(&self, ctx: &Context<'_>) -> Result<Vec<CardCombo>> {
        many(&loaders(ctx).combos_by_reward, self.id).await
    }
    /// Weeks Borgen sold this item.
    async fn tent_offers(&self, ctx: &Context<'_>) -> Result<Vec<TentOffer>> {
        many(&loaders(ctx).tent_by_item, self.id).await
    }
    /// Game updates that mention this item.
    async fn mentioned_in(&self, ctx: &Context<'_>) -> Result<Vec<GameUpdateItem>> {
        many(&loaders(ctx).update_items_by_item, self.id).await
    }
    /// Profile backgrounds that cost this item.
    async fn unlocks_backgrounds(&self, ctx: &Context<'_>) -> Result<Vec<ProfileBackground>> {
        many(&loaders(ctx).backgrounds_by_cost, self.id).await
    }
    /// What the item's own page adds.
    async fn page_details(&self, ctx: &Context<'_>) -> Result<Option<ItemDetail>> {
        one(&loaders(ctx).details_by_item, Some(self.id)).await
    }
    /// Locations the item's page lists as sources.
    async fn page_sources(&self, ctx: &Context<'_>) -> Result<Vec<ItemSource>> {
        many(&loaders(ctx).sources_by_item, self.id).await
    }
}

#[ComplexObject]
impl RecipeIngredient {
    /// The item made.
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
    /// The ingredient.
    async fn ingredient(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.ingredient_id)).await
    }
}

#[ComplexObject]
impl LocksmithContent {
    async fn container(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.container_id)).await
    }
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
}

#[ComplexObject]
impl SeedCrop {
    async fn seed(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.seed_id)).await
    }
    async fn crop(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.crop_id)).await
    }
}

#[ComplexObject]
impl WellOutput {
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
    async fn output(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.output_id)).await
    }
}

#[ComplexObject]
impl Npc {
    /// Items this NPC gives, likes, loves, hates or can be given (`relation` narrows it).
    async fn items(&self, ctx: &Context<'_>, relation: Option<String>) -> Result<Vec<NpcItem>> {
        let mut rows = many(&loaders(ctx).npc_items_by_npc, self.id).await?;
        if let Some(relation) = relation {
            rows.retain(|row| row.relation == relation);
        }
        Ok(rows)
    }
    /// Friendship rewards by level.
    async fn rewards(&self, ctx: &Context<'_>) -> Result<Vec<NpcReward>> {
        many(&loaders(ctx).rewards_by_npc, self.id).await
    }
    /// Friendship level and staff details from the NPC pages.
    async fn profile(&self, ctx: &Context<'_>) -> Result<Option<NpcProfile>> {
        one(&loaders(ctx).profiles_by_npc, Some(self.id)).await
    }
    /// The explore location the NPC lives at.
    async fn explore_location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        match self.explore_location_id {
            Some(id) => location(ctx, "explore", id).await,
            None => Ok(None),
        }
    }
}

#[ComplexObject]
impl NpcItem {
    async fn npc(&self, ctx: &Context<'_>) -> Result<Option<Npc>> {
        one(&loaders(ctx).npcs_by_id, Some(self.npc_id)).await
    }
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
}

#[ComplexObject]
impl NpcReward {
    async fn npc(&self, ctx: &Context<'_>) -> Result<Option<Npc>> {
        one(&loaders(ctx).npcs_by_id, self.npc_id).await
    }
    async fn items(&self, ctx: &Context<'_>) -> Result<Vec<NpcRewardItem>> {
        many(&loaders(ctx).reward_items_by_reward, self.id).await
    }
}

#[ComplexObject]
impl NpcRewardItem {
    async fn reward(&self, ctx: &Context<'_>) -> Result<Option<NpcReward>> {
        one(&loaders(ctx).rewards_by_id, Some(self.reward_id)).await
    }
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
}

#[ComplexObject]
impl NpcProfile {
    async fn npc(&self, ctx: &Context<'_>) -> Result<Option<Npc>> {
        one(&loaders(ctx).npcs_by_id, self.npc_id).await
    }
}

#[ComplexObject]
impl TowerLevel {
    async fn rewards(&self, ctx: &Context<'_>) -> Result<Vec<TowerReward>> {
        many(&loaders(ctx).tower_rewards_by_level, self.level).await
    }
}

#[ComplexObject]
impl TowerReward {
    async fn tower_level(&self, ctx: &Context<'_>) -> Result<Option<TowerLevel>> {
        one(&loaders(ctx).tower_by_level, Some(self.level)).await
    }
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
}

#[ComplexObject]
impl Location {
    /// Items found here.
    async fn drops(&self, ctx: &Context<'_>) -> Result<Vec<LocationDrop>> {
        let rows = many(&loaders(ctx).drops_by_location, self.id).await?;
        Ok(rows.into_iter().filter(|row| row.location_type == self.location_type).collect())
    }
    /// Items whose pages list this location as a source.
    async fn listed_by_item_pages(&self, ctx: &Context<'_>) -> Result<Vec<ItemSource>> {
        let rows = many(&loaders(ctx).sources_by_location, self.id).await?;
        Ok(rows.into_iter().filter(|row| row.location_type == self.location_type).collect())
    }
}

#[ComplexObject]
impl LocationDrop {
    async fn location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        location(ctx, &self.location_type, self.location_id).await
    }
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
}

#[ComplexObject]
impl CommunityGoal {
    async fn goal_item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, self.goal_item_id).await
    }
    async fn reward_item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, self.reward_item_id).await
    }
}

#[ComplexObject]
impl ExchangeOffer {
    async fn give_item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.give_item_id)).await
    }
    async fn receive_item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.receive_item_id)).await
    }
}

#[ComplexObject]
impl CardCombo {
    async fn cards(&self, ctx: &Context<'_>) -> Result<Vec<CardComboCard>> {
        many(&loaders(ctx).cards_by_combo, self.id).await
    }
    async fn reward_item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, self.reward_item_id).await
    }
}

#[ComplexObject]
impl CardComboCard {
    async fn combo(&self, ctx: &Context<'_>) -> Result<Option<CardCombo>> {
        one(&loaders(ctx).combos_by_id, Some(self.combo_id)).await
    }
}

#[ComplexObject]
impl TentOffer {
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
}

#[ComplexObject]
impl GameUpdate {
    /// Items the post mentions.
    async fn items(&self, ctx: &Context<'_>) -> Result<Vec<GameUpdateItem>> {
        many(&loaders(ctx).update_items_by_update, self.id).await
    }
}

#[ComplexObject]
impl GameUpdateItem {
    async fn update(&self, ctx: &Context<'_>) -> Result<Option<GameUpdate>> {
        one(&loaders(ctx).updates_by_id, Some(self.update_id)).await
    }
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
}

#[ComplexObject]
impl Password {
    async fn rewards(&self, ctx: &Context<'_>) -> Result<Vec<PasswordReward>> {
        many(&loaders(ctx).password_rewards_by_password, self.password.clone()).await
    }
}

#[ComplexObject]
impl PasswordReward {
    /// The item, for item rewards (Silver and Gold have none).
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, self.item_id).await
    }
    async fn password_entry(&self, ctx: &Context<'_>) -> Result<Option<Password>> {
        one(&loaders(ctx).passwords_by_password, Some(self.password.clone())).await
    }
}

#[ComplexObject]
impl ProfileBackground {
    async fn cost_item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, self.cost_item_id).await
    }
}

#[ComplexObject]
impl ItemDetail {
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
}

#[ComplexObject]
impl ItemSource {
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<Item>> {
        one(&loaders(ctx).items_by_id, Some(self.item_id)).await
    }
    async fn location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        location(ctx, &self.location_type, self.location_id).await
    }
}
