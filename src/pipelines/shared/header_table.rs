//! HTML tables read by their header row: a parser names the columns it needs by title and reads
//! each row's cells by the positions the header gives, never by fixed positions. A layout that
//! gained, lost or reordered a column it does not need still reads; one that lost a column it
//! needs fails the run naming the page, the table and the column. A row that cannot be read is
//! skipped, counted in the run's notes and protects its stored version (by its key when that
//! much can be read); a table with rows of which none could be read fails the run.

use hayloft_actors::pipeline::StageError;
use select::node::Node;
use select::predicate::Name;

use super::common::{rows_counted, Unreadable};
use super::html::{cells, number, squash, Html};

/// How many unreadable rows a run report describes one by one.
const UNREADABLE_SHOWN: usize = 5;

/// A table located by the titles of its header row.
pub struct HeaderTable<'a> {
    request: &'a str,
    /// What the run report calls it (`the staff table`).
    what: &'static str,
    /// The header's cells, squashed; untitled columns are empty strings.
    titles: Vec<String>,
    /// The rows after the header.
    rows: Vec<Node<'a>>,
}

/// One data row whose cells line up with the header.
pub struct Cells<'a> {
    cells: Vec<Node<'a>>,
}

impl<'a> Cells<'a> {
    /// The cell under `column` (a position the header gave).
    pub fn node(&self, column: usize) -> Option<Node<'a>> {
        self.cells.get(column).copied()
    }

    /// The cell's text, whitespace collapsed (empty for an absent cell).
    pub fn text(&self, column: usize) -> String {
        self.node(column).map(|cell| squash(&cell.text())).unwrap_or_default()
    }
}

/// The rows read from a table, and what could not be read.
pub struct TableRead<T> {
    pub rows: Vec<T>,
    /// The keys (or the count, for rows without a readable key) of the rows skipped: their stored
    /// versions are kept.
    pub unreadable: Unreadable,
    /// For the run report: which rows were skipped and why.
    pub notes: Vec<String>,
}

impl Html {
    /// The first table whose header row (its first `tr`) has a column titled each of `anchors`
    /// (case aside). The other columns a parser needs are asked for with
    /// [`HeaderTable::column`], so a missing one is named in the error.
    pub fn table_with(&self, what: &'static str, anchors: &[&str]) -> Result<HeaderTable<'_>, StageError> {
        for table in self.find(Name("table")) {
            let mut rows = table.find(Name("tr"));
            let Some(header) = rows.next() else { continue };
            let titles: Vec<String> = cells(header).iter().map(|cell| squash(&cell.text())).collect();
            if anchors.iter().all(|anchor| titles.iter().any(|title| title.eq_ignore_ascii_case(anchor))) {
                return Ok(HeaderTable { request: self.request(), what, titles, rows: rows.collect() });
            }
        }
        Err(self.layout_error(&format!("table whose header row has {}", anchors.join(" | "))))
    }
}

impl<'a> HeaderTable<'a> {
    /// The position of the column titled `title` (case aside); a layout error naming it when the
    /// header has none.
    pub fn column(&self, title: &str) -> Result<usize, StageError> {
        self.optional(title).ok_or_else(|| self.error(&format!("has no \"{title}\" column")))
    }

    /// The position of the column titled `title`, when the header has one.
    pub fn optional(&self, title: &str) -> Option<usize> {
        self.titles.iter().position(|candidate| candidate.eq_ignore_ascii_case(title))
    }

    /// The `count` columns right after the one titled `after`, each of which must be untitled:
    /// tables whose picture or number columns have no header are read relative to a titled one.
    /// `holding` says what they hold, for the error.
    pub fn untitled_after(
        &self,
        after: &str,
        count: usize,
        holding: &str,
    ) -> Result<std::ops::Range<usize>, StageError> {
        let start = self.column(after)? + 1;
        let columns = start..start + count;
        let untitled = columns.clone().all(|column| self.titles.get(column).is_some_and(String::is_empty));
        if !untitled {
            return Err(self.error(&format!(
                "does not have {count} untitled column{} right after \"{after}\" ({holding})",
                if count == 1 { "" } else { "s" }
            )));
        }
        Ok(columns)
    }

    /// The header as the run report shows it: `ID | Name | · | Zone` (`·` for an untitled column).
    pub fn header(&self) -> String {
        let shown: Vec<&str> =
            self.titles.iter().map(|title| if title.is_empty() { "·" } else { title.as_str() }).collect();
        shown.join(" | ")
    }

    /// A layout error about this table: `layout changed on /page: the staff table {problem} …`.
    pub fn error(&self, problem: &str) -> StageError {
        StageError::BadInput(format!(
            "layout changed on {}: {} {problem} (its header: {}); the stored rows are kept",
            self.request,
            self.what,
            self.header()
        ))
    }

    /// Reads every data row with `read`, which gets cells that line up with the header. A row
    /// with a different number of cells, or one `read` refuses (with the reason), is skipped and
    /// recorded by the number in `key_column` when that much can be read. Rows without any cell
    /// (spacers) are not data. A table without data rows, or with data rows of which none could
    /// be read, fails the run: a table that is there but yields nothing is a changed layout.
    pub fn read<T>(
        &self,
        key_column: usize,
        mut read: impl FnMut(&Cells<'a>) -> Result<T, String>,
    ) -> Result<TableRead<T>, StageError> {
        let width = self.titles.len();
        let mut result = TableRead { rows: Vec::new(), unreadable: Unreadable::default(), notes: Vec::new() };
        let mut reasons = Vec::new();
        let mut data_rows = 0_usize;
        for (index, row) in self.rows.iter().enumerate() {
            let cells = Cells { cells: cells(*row) };
            if cells.cells.is_empty() {
                continue;
            }
            data_rows += 1;
            let outcome = if cells.cells.len() == width {
                read(&cells)
            } else {
                Err(format!("{} cells where the header has {width}", cells.cells.len()))
            };
            match outcome {
                Ok(value) => result.rows.push(value),
                Err(reason) => {
                    let key = number(&cells.text(key_column));
                    result.unreadable.add(key);
                    reasons.push(format!("row {} ({}): {reason}", index + 1, key_shown(key)));
                }
            }
        }
        if data_rows == 0 {
            return Err(self.error("has no rows"));
        }
        if result.rows.is_empty() {
            return Err(self.error(&format!(
                "has {} but none could be read ({})",
                rows_counted(data_rows),
                shown_reasons(&reasons)
            )));
        }
        if !reasons.is_empty() {
            result.notes.push(format!(
                "{} on {}: {} of {data_rows} rows could not be read and were skipped, their stored versions kept: {}",
                self.what,
                self.request,
                reasons.len(),
                shown_reasons(&reasons)
            ));
        }
        Ok(result)
    }
}

fn key_shown(key: Option<i64>) -> String {
    key.map_or_else(|| "no readable key".to_owned(), |key| format!("key {key}"))
}

fn shown_reasons(reasons: &[String]) -> String {
    let shown = reasons.iter().take(UNREADABLE_SHOWN).cloned().collect::<Vec<_>>().join("; ");
    match reasons.len().saturating_sub(UNREADABLE_SHOWN) {
        0 => shown,
        more => format!("{shown}; and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TABLE: &str = "<table><tr><td>ID</td><td>Name</td><td>&nbsp;</td><td>Zone</td></tr>\
        <tr><td>1</td><td>Rosalie</td><td><img src=a.png></td><td>Spring</td></tr>\
        <tr><td>2</td><td>Holger</td><td></td></tr>\
        <tr></tr>\
        <tr><td>three</td><td>Beatrix</td><td></td><td>Mount Banon</td></tr></table>";

    fn read_names(table: &HeaderTable<'_>) -> Result<TableRead<(i64, String)>, StageError> {
        let (id, name) = (table.column("ID")?, table.column("name")?);
        table.read(id, |cells| {
            let key = number(&cells.text(id)).ok_or_else(|| format!("ID {:?} is not a number", cells.text(id)))?;
            Ok((key, cells.text(name)))
        })
    }

    // Columns are found by title, untitled ones relative to a titled one; rows that do not line
    // up or do not read are skipped, counted and protect their stored rows.
    #[test]
    fn rows_read_by_header() {
        let page = Html::from_text("/staff.php", TABLE);
        let table = page.table_with("the staff table", &["ID", "Name"]).unwrap();
        assert_eq!(table.header(), "ID | Name | · | Zone");
        assert_eq!(table.untitled_after("Name", 1, "the picture").unwrap(), 2..3);
        let read = read_names(&table).unwrap();
        assert_eq!(read.rows, [(1, "Rosalie".to_owned())]);
        assert!(read.unreadable.protects(2) && read.unreadable.protects_all());
        let note = read.notes.join("\n");
        assert!(note.contains("2 of 3 rows could not be read"), "{note}");
        assert!(note.contains("row 2 (key 2): 3 cells where the header has 4"), "{note}");
        assert!(note.contains("row 4 (no readable key): ID \"three\" is not a number"), "{note}");
    }

    // A reordered table reads the same; a missing column or a titled one where an untitled one
    // should be is an error naming page, table and column.
    #[test]
    fn reordered_and_missing_columns() {
        let reordered = "<table><tr><td>Name</td><td>ID</td></tr><tr><td>Rosalie</td><td>1</td></tr></table>";
        let page = Html::from_text("/staff.php", reordered);
        let table = page.table_with("the staff table", &["ID"]).unwrap();
        assert_eq!(read_names(&table).unwrap().rows, [(1, "Rosalie".to_owned())]);
        let error = table.column("Zone").err().unwrap().to_string();
        assert!(error.contains("/staff.php") && error.contains("the staff table has no \"Zone\" column"), "{error}");
        let error = table.untitled_after("Name", 1, "the picture").err().unwrap().to_string();
        assert!(error.contains("1 untitled column right after \"Name\" (the picture)"), "{error}");
        let error = page.table_with("the staff table", &["ID", "Hates"]).err().unwrap().to_string();
        assert!(error.contains("ID | Hates"), "{error}");
    }

    // A table that is there but yields nothing fails: no rows, or none readable.
    #[test]
    fn nothing_read_is_an_error() {
        let empty = Html::from_text("/staff.php", "<table><tr><td>ID</td><td>Name</td></tr></table>");
        let error = read_names(&empty.table_with("the staff table", &["ID"]).unwrap()).err().unwrap().to_string();
        assert!(error.contains("the staff table has no rows"), "{error}");
        let unreadable = Html::from_text(
            "/staff.php",
            "<table><tr><td>ID</td><td>Name</td></tr><tr><td>x</td><td>Rosalie</td></tr></table>",
        );
        let error = read_names(&unreadable.table_with("the staff table", &["ID"]).unwrap()).err().unwrap().to_string();
        assert!(error.contains("has 1 row but none could be read (row 1 (no readable key): ID \"x\""), "{error}");
    }
}
