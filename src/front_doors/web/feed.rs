//! `GET /updates/feed`: the game's update posts as an Atom feed (RFC 4287), newest first, for
//! feed readers and chat bots that poll.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use diesel::{QueryDsl, SelectableHelper};

use super::WebState;
use crate::db::schema::game_updates;
use crate::db::{with_conn, Database, DbError};
use crate::pipelines::updates::GameUpdate;

/// Posts in the feed: enough for a reader that polls daily.
const FEED_ENTRIES: i64 = 50;
/// Where a post's own page lives upstream.
const POST_URL: &str = "https://farmrpg.com/about.php?id=";

async fn latest(db: &Database) -> Result<Vec<GameUpdate>, DbError> {
    with_conn!(db, readers, |conn| {
        use diesel::ExpressionMethods as _;
        game_updates::table
            .order(game_updates::id.desc())
            .limit(FEED_ENTRIES)
            .select(GameUpdate::as_select())
            .load(conn)
            .await
            .map_err(DbError::Query)
    })
}

/// Escapes text for XML element content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // Characters XML 1.0 forbids (control characters other than tab and line breaks).
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => escaped.push(c),
        }
    }
    escaped
}

/// A post's title: its first line, shortened.
fn title(update: &GameUpdate) -> String {
    let first = update.text.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("Game update");
    let mut title: String = first.chars().take(80).collect();
    if first.chars().count() > 80 {
        title.push('…');
    }
    format!("{} — {title}", update.posted_on)
}

/// The Atom document for `updates`, newest first.
pub fn atom(updates: &[GameUpdate]) -> String {
    let updated = updates.iter().map(|update| update.posted_on.as_str()).max().unwrap_or("1970-01-01");
    let mut feed = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>Farm RPG game updates</title>\n<id>urn:hayloft:updates</id>\n<updated>{updated}T00:00:00Z</updated>\n\
         <author><name>Farm RPG</name></author>\n<link rel=\"self\" href=\"/updates/feed\"/>\n"
    );
    for update in updates {
        feed.push_str(&format!(
            "<entry>\n<title>{}</title>\n<id>urn:hayloft:update:{}</id>\n<updated>{}T00:00:00Z</updated>\n\
             <link href=\"{POST_URL}{}\"/>\n<content type=\"html\">{}</content>\n</entry>\n",
            escape(&title(update)),
            update.id,
            escape(&update.posted_on),
            update.id,
            escape(&update.html)
        ));
    }
    feed.push_str("</feed>\n");
    feed
}

pub async fn updates_feed(state: web::Data<WebState>) -> HttpResponse {
    match latest(&state.db).await {
        Ok(updates) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/atom+xml; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(atom(&updates)),
        Err(error) => {
            tracing::warn!(%error, "the updates feed could not be read");
            HttpResponse::ServiceUnavailable().body(format!("the updates feed is unavailable: {error}\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Text and HTML are escaped; entries keep their order and ids.
    #[test]
    fn atom_entries_are_escaped() {
        let update = GameUpdate {
            id: 451,
            posted_on: "2023-06-01".to_owned(),
            text: "\nFish & <Chips> day\nmore".to_owned(),
            html: "<b>Fish</b> &amp; chips".to_owned(),
        };
        let feed = atom(&[update]);
        assert!(feed.contains("<title>2023-06-01 — Fish &amp; &lt;Chips&gt; day</title>"), "{feed}");
        assert!(feed.contains("<content type=\"html\">&lt;b&gt;Fish&lt;/b&gt; &amp;amp; chips</content>"), "{feed}");
        assert!(feed.contains("<id>urn:hayloft:update:451</id>") && feed.contains("<updated>2023-06-01T00:00:00Z"));
    }
}
