//! Reading the game's HTML pages with `select` (an HTML5 parser, lenient with the unclosed
//! `</li>` and `</td>` tags the pages have). Every lookup a parser depends on goes through
//! [`Html::require`] or [`Html::section`], so a page whose layout changed fails the run with the
//! page and the selector named — never an empty table.

use hayloft_actors::pipeline::StageError;
use select::document::Document;
use select::node::Node;
use select::predicate::{Class, Name, Predicate};

use super::source::Page;

/// A parsed page, remembering which request it answered for error messages.
pub struct Html {
    doc: Document,
    request: String,
}

impl Html {
    pub fn parse(page: &Page) -> Self {
        Self::from_text(&page.request, &String::from_utf8_lossy(&page.body))
    }

    pub fn from_text(request: &str, text: &str) -> Self {
        Self { doc: Document::from(text), request: request.to_owned() }
    }

    pub fn request(&self) -> &str {
        &self.request
    }

    pub fn find<P: Predicate>(&self, predicate: P) -> impl Iterator<Item = Node<'_>> {
        self.doc.find(predicate)
    }

    /// Every node matching `predicate`; a layout error naming `selector` when there is none.
    pub fn require<P: Predicate>(&self, predicate: P, selector: &str) -> Result<Vec<Node<'_>>, StageError> {
        let found: Vec<Node<'_>> = self.doc.find(predicate).collect();
        if found.is_empty() {
            return Err(self.layout_error(selector));
        }
        Ok(found)
    }

    /// The body of the section titled `title`: the element after its `div.content-block-title`.
    pub fn section(&self, title: &str) -> Result<Node<'_>, StageError> {
        self.doc
            .find(Name("div").and(Class("content-block-title")))
            .find(|node| squash(&node.text()).eq_ignore_ascii_case(title))
            .and_then(next_element)
            .ok_or_else(|| self.layout_error(&format!("div.content-block-title \"{title}\" + *")))
    }

    /// The page title from the app shell's navigation bar.
    pub fn title(&self) -> Option<String> {
        self.doc.find(Class("center").and(Class("sliding"))).next().map(|node| squash(&node.text()))
    }

    pub fn layout_error(&self, selector: &str) -> StageError {
        layout_error(&self.request, selector)
    }
}

/// The error every parser gives when a page no longer has the structure it reads.
pub fn layout_error(request: &str, selector: &str) -> StageError {
    StageError::BadInput(format!(
        "layout changed on {request}: `{selector}` found nothing (is this the right page?); the stored rows are kept"
    ))
}

/// The next sibling that is an element (skipping text and comments).
pub fn next_element(node: Node<'_>) -> Option<Node<'_>> {
    let mut next = node.next();
    while let Some(candidate) = next {
        if candidate.name().is_some() {
            return Some(candidate);
        }
        next = candidate.next();
    }
    None
}

/// Whitespace collapsed to single spaces and trimmed (`&nbsp;` included).
pub fn squash(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == '\u{a0}')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text directly inside `node` (not inside its child elements), squashed.
pub fn own_text(node: Node<'_>) -> String {
    squash(&node.children().filter_map(|child| child.as_text()).collect::<String>())
}

/// The text nodes of `node`'s subtree, each squashed, empty ones left out.
pub fn text_lines(node: Node<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    collect_text(node, &mut lines);
    lines
}

fn collect_text(node: Node<'_>, lines: &mut Vec<String>) {
    for child in node.children() {
        if let Some(text) = child.as_text() {
            let text = squash(text);
            if !text.is_empty() {
                lines.push(text);
            }
        } else if !matches!(child.name(), Some("script" | "style")) {
            collect_text(child, lines);
        }
    }
}

/// The `td`/`th` cells of a table row.
pub fn cells(row: Node<'_>) -> Vec<Node<'_>> {
    row.children().filter(|child| matches!(child.name(), Some("td" | "th"))).collect()
}

/// A whole number written with thousands separators: `2,754,400`, ` 4 `, `1.234`.
pub fn number(text: &str) -> Option<i64> {
    let digits: String = text.trim().chars().filter(|c| !matches!(c, ',' | '.' | '\u{a0}' | ' ')).collect();
    if digits.is_empty() || !digits.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `Mushroom (2,754,400)` or `Grasshopper (x40)` → (`Mushroom`, 2754400). `None` when the text
/// does not end in a parenthesised quantity.
pub fn name_and_quantity(text: &str) -> Option<(String, i64)> {
    let text = squash(text);
    let open = text.rfind('(')?;
    let inner = text[open + 1..].strip_suffix(')')?.trim();
    let inner = inner.strip_prefix('x').or_else(|| inner.strip_suffix('x')).unwrap_or(inner);
    let quantity = number(inner)?;
    let name = text[..open].trim().to_owned();
    (!name.is_empty()).then_some((name, quantity))
}

/// A game date as pages write it: `Jul 9th, 2023`, `June 1st, 2023`, `May 20, 2023`.
pub fn game_date(text: &str) -> Option<chrono::NaiveDate> {
    let text = squash(text);
    let mut cleaned = String::with_capacity(text.len());
    let mut previous_digit = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if previous_digit && c.is_ascii_alphabetic() {
            // Drop an ordinal suffix (1st, 2nd, 3rd, 9th) right after the day number.
            let mut suffix = String::from(c);
            while let Some(next) = chars.peek().filter(|next| next.is_ascii_alphabetic()) {
                suffix.push(*next);
                chars.next();
            }
            if !matches!(suffix.to_ascii_lowercase().as_str(), "st" | "nd" | "rd" | "th") {
                cleaned.push_str(&suffix);
            }
            previous_digit = false;
            continue;
        }
        previous_digit = c.is_ascii_digit();
        cleaned.push(c);
    }
    ["%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y"]
        .iter()
        .find_map(|format| chrono::NaiveDate::parse_from_str(&cleaned, format).ok())
}

/// `1,663,146 / 2,754,400 (60.38%)` → (1663146, 2754400, 60.38).
pub fn progress(text: &str) -> Option<(i64, i64, f64)> {
    let text = squash(text);
    let text = text.strip_prefix("Progress:").unwrap_or(&text).trim();
    let (done, rest) = text.split_once('/')?;
    let (goal, percent) = rest.split_once('(')?;
    let percent = percent.trim().trim_end_matches(')').trim().trim_end_matches('%').trim().replace(',', "");
    Some((number(done)?, number(goal)?, percent.parse().ok()?))
}

/// The value of `key` in a link's query string (`item.php?id=43` → `43` for `id`).
pub fn query_value<'a>(href: &'a str, key: &str) -> Option<&'a str> {
    let (_, query) = href.split_once('?')?;
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == key).map(|(_, value)| value)
}

/// The item id a link points at (`item.php?id=43`).
pub fn item_link_id(node: Node<'_>) -> Option<i64> {
    let href = node.attr("href")?;
    if !href.contains("item.php") {
        return None;
    }
    query_value(href, "id")?.parse().ok()
}

/// Whether a link's href points at `page` (`item.php`, `location.php`, ...).
pub struct LinkTo(pub &'static str);

impl Predicate for LinkTo {
    fn matches(&self, node: &Node<'_>) -> bool {
        node.name() == Some("a")
            && node.attr("href").is_some_and(|href| href.trim_start_matches('/').starts_with(self.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Quantities come as "(N)", "(xN)" and with thousands separators.
    #[test]
    fn quantities_and_numbers_parse() {
        assert_eq!(name_and_quantity("Mushroom (2,754,400)"), Some(("Mushroom".to_owned(), 2_754_400)));
        assert_eq!(name_and_quantity(" Grasshopper  (x40) "), Some(("Grasshopper".to_owned(), 40)));
        assert_eq!(name_and_quantity("Clubs"), None);
        assert_eq!(number(" 1,663,146 "), Some(1_663_146));
        assert_eq!(number("lots"), None);
        assert_eq!(query_value("location.php?type=explore&id=5", "id"), Some("5"));
        assert_eq!(progress("Progress: 1,663,146 / 2,754,400 (60.38%)"), Some((1_663_146, 2_754_400, 60.38)));
        let date = |text| game_date(text).map(|date| date.to_string());
        assert_eq!(date("Jul 9th, 2023").as_deref(), Some("2023-07-09"));
        assert_eq!(date(" June 1st, 2023").as_deref(), Some("2023-06-01"));
        assert_eq!(date("December 22nd, 2021").as_deref(), Some("2021-12-22"));
        assert_eq!(date("Sometime"), None);
    }

    // A missing selector is an error naming the page and the selector.
    #[test]
    fn missing_structure_names_page_and_selector() {
        let page = Html::from_text("/comm.php", "<div class=\"navbar\"><div class=\"center sliding\">Tent</div></div>");
        assert_eq!(page.title().as_deref(), Some("Tent"));
        let error = page.section("Current Goal").unwrap_err().to_string();
        assert!(error.contains("/comm.php") && error.contains("Current Goal"), "{error}");
    }

    // Unclosed list items still give one row each.
    #[test]
    fn unclosed_tags_are_tolerated() {
        let page = Html::from_text("/x", "<ul><li class=item>a<li class=item>b</ul>");
        let rows: Vec<String> = page.find(Class("item")).map(|node| node.text()).collect();
        assert_eq!(rows, ["a", "b"]);
    }
}
