//! A page fragment as a reader sees it: its text laid out the way a browser shows it, and a clean
//! copy of its HTML that reads the same anywhere.
//!
//! Text: inline elements stay inline, block elements and `<br>` break lines, paragraphs are
//! separated by one blank line, whitespace collapses as in a browser, and what a browser does not
//! show (`display:none`, `hidden`, scripts, styles, comments) is left out. An image shows its
//! `alt` text, as a text browser does (`craftable items -> <img alt="Steel Vise">` reads
//! `craftable items -> Steel Vise`), unless the words just before it already say it; then the
//! space before the picture is not kept in front of punctuation (`Wooden Table <img alt="Wooden
//! Table">, Fancy Chair` reads `Wooden Table, Fancy Chair`).
//!
//! HTML: the same elements minus the hidden ones, with tags balanced (the HTML5 parser repairs
//! `</font color>` and unclosed tags), `<marquee>` and `<blink>` unwrapped, script hooks
//! (`on…` attributes, `javascript:` links) dropped, and every `href` and `src` made absolute
//! against the page's address, so a feed reader or another site resolves them against the
//! upstream, not against Hayloft.
//!
//! Both take a `replace` hook: an element it answers for is shown as that text instead of its
//! content (the updates pipeline shows a staff-name macro as its stable form).

use select::node::Node;
use url::Url;

use super::html::squash;

/// Elements that start and end a line of their own.
const BLOCKS: [&str; 30] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "pre",
    "section",
    "table",
    "ul",
];
/// Elements a browser shows nothing of.
const UNSHOWN: [&str; 6] = ["script", "style", "template", "noscript", "head", "title"];
/// Elements without content or closing tag.
const VOID: [&str; 8] = ["br", "hr", "img", "input", "meta", "link", "source", "wbr"];

/// Whether a browser hides `node`: the `hidden` attribute, or an inline style that hides it.
pub fn is_hidden(node: Node<'_>) -> bool {
    if node.attr("hidden").is_some() {
        return true;
    }
    node.attr("style").is_some_and(|style| {
        let style: String = style.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        style.contains("display:none") || style.contains("visibility:hidden")
    })
}

/// What a replace hook answers: the text to show instead of an element's content.
pub type Replace<'r> = &'r dyn Fn(Node<'_>) -> Option<String>;

/// The text of `node`'s content as a browser lays it out (see the module documentation).
pub fn visible_text(node: Node<'_>, replace: Replace<'_>) -> String {
    let mut layout = Layout::default();
    layout.children(node, replace);
    layout.finish()
}

/// The text of an HTML fragment (an API field holding markup, such as a quest description) as
/// a browser shows it, with no replace hook.
pub fn fragment_text(html: &str) -> String {
    let document = select::document::Document::from(html);
    // The parser wraps any fragment in `<html><body>`; a fragment that is only text still has
    // a body.
    document.find(select::predicate::Name("body")).next().map_or_else(String::new, |body| visible_text(body, &|_| None))
}

/// `node`'s content as clean HTML (see the module documentation); links stay as they are when
/// `base` is `None`.
pub fn clean_html(node: Node<'_>, base: Option<&Url>, replace: Replace<'_>) -> String {
    let mut out = String::new();
    write_children(node, base, replace, &mut out);
    out.trim().to_owned()
}

/// Lines being laid out.
#[derive(Default)]
struct Layout {
    lines: Vec<String>,
    current: String,
    /// Whitespace was seen since the last character: one space goes before the next one.
    space: bool,
    /// An image came after that whitespace (the space stood before a picture).
    image_after_space: bool,
}

impl Layout {
    fn children(&mut self, node: Node<'_>, replace: Replace<'_>) {
        for child in node.children() {
            self.node(child, replace);
        }
    }

    fn node(&mut self, node: Node<'_>, replace: Replace<'_>) {
        if let Some(text) = node.as_text() {
            self.text(text);
            return;
        }
        let Some(name) = node.name() else { return };
        if UNSHOWN.contains(&name) || is_hidden(node) {
            return;
        }
        match name {
            "br" => self.end_line(),
            "img" => self.image(node),
            "p" => {
                self.blank_line();
                self.content(node, replace);
                self.blank_line();
            }
            _ if BLOCKS.contains(&name) => {
                self.break_line();
                self.content(node, replace);
                self.break_line();
            }
            _ => self.content(node, replace),
        }
    }

    /// An image: its `alt` text, unless the line already ends with it.
    fn image(&mut self, node: Node<'_>) {
        let alt = node.attr("alt").map(squash).unwrap_or_default();
        let said = self.current.trim_end().to_lowercase().ends_with(&alt.to_lowercase());
        if alt.is_empty() || said {
            self.image_after_space |= self.space;
        } else {
            self.text(&alt);
        }
    }

    fn content(&mut self, node: Node<'_>, replace: Replace<'_>) {
        match replace(node) {
            Some(text) => self.text(&text),
            None => self.children(node, replace),
        }
    }

    fn text(&mut self, text: &str) {
        for c in text.chars() {
            // `&nbsp;` shows as a space but does not collapse.
            if c.is_whitespace() && c != '\u{a0}' {
                self.space = true;
                continue;
            }
            let before_picture_punctuation =
                self.image_after_space && matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | ')');
            if self.space && !self.current.is_empty() && !before_picture_punctuation {
                self.current.push(' ');
            }
            self.space = false;
            self.image_after_space = false;
            self.current.push(if c == '\u{a0}' { ' ' } else { c });
        }
    }

    /// `<br>`: the line ends here, even when it is empty (two in a row make a blank line).
    fn end_line(&mut self) {
        self.lines.push(std::mem::take(&mut self.current).trim_end().to_owned());
        self.space = false;
        self.image_after_space = false;
    }

    /// A block boundary: a new line unless at the start of one.
    fn break_line(&mut self) {
        if !self.current.trim().is_empty() {
            self.end_line();
        }
        self.current.clear();
        self.space = false;
    }

    /// A paragraph boundary: one blank line.
    fn blank_line(&mut self) {
        self.break_line();
        self.lines.push(String::new());
    }

    /// The lines, with runs of blank lines made one and none at the start or end.
    fn finish(mut self) -> String {
        self.break_line();
        let mut text = String::new();
        let mut blank = false;
        for line in &self.lines {
            let line = line.trim();
            if line.is_empty() {
                blank = !text.is_empty();
                continue;
            }
            if !text.is_empty() {
                text.push_str(if blank { "\n\n" } else { "\n" });
            }
            text.push_str(line);
            blank = false;
        }
        text
    }
}

fn write_children(node: Node<'_>, base: Option<&Url>, replace: Replace<'_>, out: &mut String) {
    for child in node.children() {
        if let Some(text) = child.as_text() {
            escape_into(text, false, out);
            continue;
        }
        let Some(name) = child.name() else { continue };
        if UNSHOWN.contains(&name) || is_hidden(child) {
            continue;
        }
        if UNWRAPPED.contains(&name) {
            write_children(child, base, replace, out);
            continue;
        }
        out.push('<');
        out.push_str(name);
        for (attribute, value) in child.attrs() {
            // Script hooks run in whatever page shows the copy: a clean copy has none.
            let script = attribute.to_ascii_lowercase().starts_with("on")
                || (matches!(attribute, "href" | "src")
                    && value.trim().to_ascii_lowercase().starts_with("javascript:"));
            if script {
                continue;
            }
            out.push(' ');
            out.push_str(attribute);
            out.push_str("=\"");
            match (attribute, base) {
                ("href" | "src", Some(base)) => escape_into(&absolute(base, value), true, out),
                _ => escape_into(value, true, out),
            }
            out.push('"');
        }
        out.push('>');
        if VOID.contains(&name) {
            continue;
        }
        match replace(child) {
            Some(text) => escape_into(&text, false, out),
            None => write_children(child, base, replace, out),
        }
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
}

/// Elements the clean HTML leaves out while keeping their content: moving and blinking text
/// (`<marquee>`, `<blink>`) that feed readers do not show and browsers dropped.
const UNWRAPPED: [&str; 2] = ["marquee", "blink"];

/// `link` resolved against `base` (`gold.php` → `https://farmrpg.com/gold.php`); a link that
/// does not resolve stays as written.
fn absolute(base: &Url, link: &str) -> String {
    base.join(link.trim()).map_or_else(|_| link.to_owned(), String::from)
}

fn escape_into(text: &str, attribute: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use select::document::Document;
    use select::predicate::Name;

    use super::*;

    fn body(html: &str) -> Document {
        Document::from(format!("<div id=body>{html}</div>").as_str())
    }

    fn text_of(html: &str) -> String {
        let document = body(html);
        let node = document.find(Name("div")).next().unwrap();
        visible_text(node, &|_| None)
    }

    // Inline stays inline, <br> and blocks break lines, two <br> make one blank line, hidden
    // elements and the space before a picture's punctuation go.
    #[test]
    fn text_is_laid_out_like_a_browser() {
        assert_eq!(
            text_of("check out <a href=x>Borgen   Bucks</a><br />\n<br />\n<br/>IOS"),
            "check out Borgen Bucks\n\nIOS"
        );
        assert_eq!(
            text_of("- Wooden Table <a><img alt='Wooden Table'></a><span style=\"display: none\">Wooden Table</span>, Fancy Chair"),
            "- Wooden Table, Fancy Chair"
        );
        assert_eq!(text_of("<p>one</p><p>two</p>three<div>four</div>five"), "one\n\ntwo\n\nthree\nfour\nfive");
        assert_eq!(text_of("a<span hidden>b</span>&nbsp;&nbsp;c<script>x()</script>"), "a  c");
        assert_eq!(text_of("3/31 --> <img> and <b>bold</b> , kept"), "3/31 --> and bold , kept");
        assert_eq!(
            text_of("items -> <a><img alt=\"Steel Vise\"></a><span style=\"display:none\">Steel Vise</span> and <img alt='Red Trunk'>"),
            "items -> Steel Vise and Red Trunk"
        );
    }

    // Links become absolute, hidden elements and scripts go, the replace hook answers for an
    // element's content, attributes are never touched by it.
    #[test]
    fn html_is_cleaned_and_links_made_absolute() {
        let document = body(
            "Buy <a href=\"gold.php\" class=x>Gold</a> <img src='/img/items/211.png'><span style=\"display:none\">Gold</span> \
             <a href='https://play.google.com/store/apps/details?id=com.firestream.farmrpg'>Android</a> <strong>Geckopath</strong>",
        );
        let node = document.find(Name("div")).next().unwrap();
        let base = Url::parse("https://farmrpg.com/about.php?all=1").unwrap();
        let replace = |node: Node<'_>| (node.name() == Some("strong")).then(|| "…path".to_owned());
        assert_eq!(
            clean_html(node, Some(&base), &replace),
            "Buy <a href=\"https://farmrpg.com/gold.php\" class=\"x\">Gold</a> <img src=\"https://farmrpg.com/img/items/211.png\"> \
             <a href=\"https://play.google.com/store/apps/details?id=com.firestream.farmrpg\">Android</a> <strong>…path</strong>"
        );
        assert_eq!(visible_text(node, &replace), "Buy Gold Android …path");
    }

    // Moving text is unwrapped, script hooks dropped, broken tags balanced.
    #[test]
    fn html_is_sanitised() {
        let document = body(
            "<marquee behavior=alternate><font color=red onclick=\"steal()\">Hi</font color></marquee> \
             <a href=\"javascript:steal()\" onmouseover=\"steal()\">there</a>",
        );
        let node = document.find(Name("div")).next().unwrap();
        assert_eq!(clean_html(node, None, &|_| None), "<font color=\"red\">Hi</font> <a>there</a>");
        assert_eq!(visible_text(node, &|_| None), "Hi there");
    }
}
