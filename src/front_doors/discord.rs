//! The Discord bot: slash commands `/count`, `/status`, `/recent`, `/changes` and `/run`, each a
//! thin shell over the command core, answered with embeds that read well on a phone.
//!
//! The bot (poise on serenity) is its own actor and shares the process: its gateway client is
//! started as work of that actor on the running runtime, never owning one. `/run` is for members
//! with one of `run_roles` or listed in `run_users`. The token comes from the environment
//! (`DISCORD_TOKEN` or `HAYLOFT_DISCORD__TOKEN`) and is never logged. Commands are registered in
//! one guild (`register = "guild"`, instant: for development) or globally (`"global"`, which
//! Discord may take a while to show: for production).
//!
//! What can be tested without Discord is: the registration payload ([`registration_payload`])
//! and every handler through the command core ([`answer`]). The gateway connection itself needs
//! Discord and a real token.

use std::sync::Arc;

use actix::{Actor, ActorContext as _, AsyncContext as _, Handler, Message};
use hayloft_actors::command::{run_line, Caller, Command, CommandError, Reply, RECENT_DEFAULT, RECENT_MAX};
use hayloft_actors::ledger::RunStatus;
use hayloft_actors::supervisor::ChildContext;
use poise::serenity_prelude as serenity;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::commands::CommandCore;
use crate::secret::Secret;

/// `[discord]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordSettings {
    pub enabled: bool,
    /// The bot token; better given as `DISCORD_TOKEN` than written in a file.
    pub token: Option<Secret>,
    pub register: Registration,
    /// The guild to register commands in when `register = "guild"`.
    pub guild_id: Option<u64>,
    /// Members with one of these role ids may `/run`.
    pub run_roles: Vec<u64>,
    /// These user ids may `/run`.
    pub run_users: Vec<u64>,
}

impl Default for DiscordSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            token: None,
            register: Registration::Guild,
            guild_id: None,
            run_roles: Vec::new(),
            run_users: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// In `guild_id` only: shows at once (development).
    Guild,
    /// Everywhere the bot is: may take a while to show (production).
    Global,
}

impl DiscordSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.token.is_none() {
            return Err("the bot needs a token: set DISCORD_TOKEN".to_owned());
        }
        if self.register == Registration::Guild && self.guild_id.is_none() {
            return Err("register = \"guild\" needs guild_id (or register = \"global\")".to_owned());
        }
        Ok(())
    }

    /// Who is asking, and whether they may `/run`.
    pub fn caller(&self, user_id: u64, user_name: &str, roles: &[u64]) -> Caller {
        let admin = self.run_users.contains(&user_id) || roles.iter().any(|role| self.run_roles.contains(role));
        Caller::new("discord", format!("{user_name} ({user_id})"), admin)
    }
}

/// What every command handler reads.
pub struct Data {
    pub core: CommandCore,
    pub settings: Arc<DiscordSettings>,
}

pub type Error = Box<dyn std::error::Error + Send + Sync>;
type SlashContext<'a> = poise::Context<'a, Data, Error>;

/// Embed colours: green for answers, red for refusals and failures, amber for runs under way.
const OK: u32 = 0x1a7f37;
const BAD: u32 = 0xcf222e;
const BUSY: u32 = 0xd29922;
/// Discord allows 25 fields and 4096 characters of description per embed.
const MAX_FIELDS: usize = 25;
const MAX_DESCRIPTION: usize = 4000;

fn clip(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The embed answering a command: short lines, a title that says it all.
pub fn answer(result: &Result<Reply, CommandError>) -> serenity::CreateEmbed {
    let embed = serenity::CreateEmbed::new();
    match result {
        Err(CommandError::Forbidden { why, .. }) => {
            embed.title("Not allowed").description(clip(why, MAX_DESCRIPTION)).colour(BAD)
        }
        Err(error) => {
            embed.title("Could not do that").description(clip(&error.to_string(), MAX_DESCRIPTION)).colour(BAD)
        }
        Ok(Reply::Count { entity, count }) => embed.title(format!("{count} {entity}")).colour(OK),
        Ok(Reply::Status(report)) => {
            let fields = report.pipelines.iter().take(MAX_FIELDS).map(|pipeline| {
                let last = match (&pipeline.running, &pipeline.last_run) {
                    (Some(run_id), _) => format!("running (#{run_id})"),
                    (None, Some(run)) => format!("{} · {}", run.status, hayloft_actors::command::counts_text(run)),
                    (None, None) => "never run".to_owned(),
                };
                let next = match (&pipeline.next_run, pipeline.enabled) {
                    (_, false) => "off schedule".to_owned(),
                    (Some(next), true) => format!("next <t:{}:R>", next.timestamp()),
                    (None, true) => "no next run".to_owned(),
                };
                (pipeline.name.clone(), format!("{last}\n{next}"), true)
            });
            let failing = report
                .pipelines
                .iter()
                .any(|pipeline| pipeline.last_run.as_ref().is_some_and(|run| run.status == RunStatus::Failed));
            embed.title("Pipelines").fields(fields).colour(if failing { BAD } else { OK })
        }
        Ok(Reply::RunStarted { pipeline, run_id }) => {
            embed.title(format!("{pipeline}: run #{run_id} started")).colour(BUSY)
        }
        Ok(Reply::RunFinished(run)) => embed
            .title(format!("{}: {}", run.pipeline, run.status))
            .description(clip(&run_line(run), MAX_DESCRIPTION))
            .colour(if run.status == RunStatus::Succeeded { OK } else { BAD }),
        Ok(Reply::Recent { runs }) if runs.is_empty() => embed.title("No runs yet").colour(OK),
        Ok(Reply::Recent { runs }) => {
            let lines: Vec<String> = runs.iter().map(run_line).collect();
            embed.title("Recent runs").description(clip(&lines.join("\n"), MAX_DESCRIPTION)).colour(OK)
        }
        Ok(Reply::Changes(list)) => match list.run_id {
            None => embed.title("No changes yet").colour(OK),
            Some(run_id) => {
                let lines: Vec<String> = list
                    .changes
                    .iter()
                    .take(20)
                    .map(|change| {
                        let label = change.label.as_deref().map(|label| format!(" {label}")).unwrap_or_default();
                        format!("`{}` {} {}{label}", change.op.as_str(), change.entity, change.key)
                    })
                    .collect();
                let mut text = lines.join("\n");
                if list.total > lines.len() {
                    text.push_str(&format!("\n… and {} more", list.total - lines.len()));
                }
                embed
                    .title(format!("Run #{run_id}: {} changes", list.total))
                    .description(clip(&text, MAX_DESCRIPTION))
                    .colour(OK)
            }
        },
        Ok(other) => embed.description(clip(&other.to_text(), MAX_DESCRIPTION)).colour(OK),
    }
}

/// Runs one command for a Discord member and returns the embed to send.
pub async fn handle(
    data: &Data,
    user_id: u64,
    user_name: &str,
    roles: &[u64],
    command: Command,
) -> serenity::CreateEmbed {
    let caller = data.settings.caller(user_id, user_name, roles);
    answer(&data.core.execute(&caller, command).await)
}

async fn respond(ctx: SlashContext<'_>, command: Command) -> Result<(), Error> {
    let roles: Vec<u64> = match ctx.author_member().await {
        Some(member) => member.roles.iter().map(|role| role.get()).collect(),
        None => Vec::new(),
    };
    let author = ctx.author();
    let embed = handle(ctx.data(), author.id.get(), &author.name, &roles, command).await;
    ctx.send(poise::CreateReply::default().embed(embed)).await?;
    Ok(())
}

/// Count the rows of an entity.
#[poise::command(slash_command)]
async fn count(
    ctx: SlashContext<'_>,
    #[description = "What to count: items, npcs, recipes, drops, runs…"] entity: String,
) -> Result<(), Error> {
    respond(ctx, Command::Count { entity: entity.to_ascii_lowercase() }).await
}

/// Every pipeline: last run and next run.
#[poise::command(slash_command)]
async fn status(ctx: SlashContext<'_>) -> Result<(), Error> {
    respond(ctx, Command::Status).await
}

/// The latest runs and their change counts.
#[poise::command(slash_command)]
async fn recent(
    ctx: SlashContext<'_>,
    #[description = "How many runs (default 10)"]
    #[min = 1]
    #[max = 50]
    count: Option<u32>,
) -> Result<(), Error> {
    let limit = count.map_or(RECENT_DEFAULT, |count| (count as usize).clamp(1, RECENT_MAX));
    respond(ctx, Command::Recent { limit, pipeline: None }).await
}

/// What a run changed (default: the latest run that changed anything).
#[poise::command(slash_command)]
async fn changes(
    ctx: SlashContext<'_>,
    #[description = "The run id"]
    #[min = 1]
    run: Option<i64>,
) -> Result<(), Error> {
    respond(ctx, Command::Changes { run, view: hayloft_actors::command::ChangesView::default() }).await
}

/// Offers the pipeline names as the member types.
async fn pipelines_starting_with(_ctx: SlashContext<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    let partial = partial.to_ascii_lowercase();
    let choices = crate::pipelines::KNOWN
        .iter()
        .filter(|name| name.starts_with(&partial))
        .map(|name| serenity::AutocompleteChoice::new(*name, *name))
        .collect();
    serenity::CreateAutocompleteResponse::new().set_choices(choices)
}

/// Run a pipeline now (members with a run role only).
#[poise::command(slash_command, guild_only)]
async fn run(
    ctx: SlashContext<'_>,
    #[description = "The pipeline: items, npcs, tower…"]
    #[autocomplete = "pipelines_starting_with"]
    pipeline: String,
) -> Result<(), Error> {
    respond(ctx, Command::Run { pipeline: pipeline.to_ascii_lowercase(), wait: false, allow_mass_delete: false }).await
}

/// The bot's slash commands.
pub fn commands() -> Vec<poise::Command<Data, Error>> {
    vec![count(), status(), recent(), changes(), run()]
}

/// What is sent to Discord to register the commands, as JSON.
pub fn registration_payload() -> serde_json::Value {
    let commands = commands();
    serde_json::to_value(poise::builtins::create_application_commands(&commands)).unwrap_or_default()
}

/// The bot actor: runs the gateway client as its work; a lost connection fails the actor and
/// the supervisor reconnects with backoff.
pub struct DiscordBot {
    settings: Arc<DiscordSettings>,
    core: CommandCore,
    child: ChildContext,
    shards: Option<Arc<serenity::ShardManager>>,
}

impl DiscordBot {
    pub fn new(settings: Arc<DiscordSettings>, core: CommandCore, child: ChildContext) -> Self {
        Self { settings, core, child, shards: None }
    }
}

/// The client's shard manager, once built.
#[derive(Message)]
#[rtype(result = "()")]
struct Connected(Arc<serenity::ShardManager>);

impl Actor for DiscordBot {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(token) = self.settings.token.as_ref().map(|token| token.expose().to_owned()) else {
            self.child.fail("no Discord token");
            ctx.stop();
            return;
        };
        let settings = self.settings.clone();
        let core = self.core.clone();
        let framework = poise::Framework::builder()
            .options(poise::FrameworkOptions { commands: commands(), ..Default::default() })
            .setup(move |ctx, ready, framework| {
                Box::pin(async move {
                    match (settings.register, settings.guild_id) {
                        (Registration::Guild, Some(guild)) => {
                            poise::builtins::register_in_guild(
                                ctx,
                                &framework.options().commands,
                                serenity::GuildId::new(guild),
                            )
                            .await?;
                        }
                        _ => poise::builtins::register_globally(ctx, &framework.options().commands).await?,
                    }
                    info!(bot = %ready.user.name, register = ?settings.register, "discord bot ready");
                    Ok(Data { core, settings })
                })
            })
            .build();
        let (addr, child) = (ctx.address(), self.child.clone());
        self.child.spawn_work("discord gateway", async move {
            let client = serenity::ClientBuilder::new(token, serenity::GatewayIntents::non_privileged())
                .framework(framework)
                .await;
            let mut client = match client {
                Ok(client) => client,
                Err(error) => {
                    child.fail(format!("discord client: {error}"));
                    addr.do_send(Stop);
                    return;
                }
            };
            addr.do_send(Connected(client.shard_manager.clone()));
            // Returns only when the connection is lost for good (or the token is refused).
            if let Err(error) = client.start().await {
                warn!(%error, "discord gateway stopped");
                child.fail(format!("discord gateway: {error}"));
            }
            addr.do_send(Stop);
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(shards) = self.shards.take() {
            actix::spawn(async move { shards.shutdown_all().await });
        }
    }
}

/// Stops the bot (its connection ended).
#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

impl Handler<Connected> for DiscordBot {
    type Result = ();

    fn handle(&mut self, Connected(shards): Connected, _ctx: &mut Self::Context) {
        self.shards = Some(shards);
    }
}

impl Handler<Stop> for DiscordBot {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn run_is_for_configured_roles_and_users() {
        let settings = DiscordSettings { run_roles: vec![7], run_users: vec![42], ..DiscordSettings::default() };
        assert!(settings.caller(1, "a", &[7]).admin);
        assert!(settings.caller(42, "b", &[]).admin);
        assert!(!settings.caller(1, "c", &[8]).admin);
    }

    #[test]
    fn a_bot_needs_a_token_and_a_place_to_register() {
        let enabled = DiscordSettings { enabled: true, ..DiscordSettings::default() };
        assert!(enabled.validate().unwrap_err().contains("DISCORD_TOKEN"));
        let token = Some(Secret::new("t".into()));
        let no_guild = DiscordSettings { token: token.clone(), ..enabled.clone() };
        assert!(no_guild.validate().unwrap_err().contains("guild_id"));
        assert!(DiscordSettings { register: Registration::Global, ..no_guild }.validate().is_ok());
    }
}
