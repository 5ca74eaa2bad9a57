//! A small line editor for the interactive SSH prompt: printable input, backspace, Ctrl-U,
//! left/right, up/down through history, Ctrl-C and Ctrl-D. It only turns input bytes into
//! [`Action`]s and terminal output; the session decides what a submitted line does.
//!
//! Without a terminal (`ssh -T`), nothing is echoed and lines end at `\n` or `\r`.

/// How many submitted lines the history keeps.
const HISTORY: usize = 100;

/// What the input bytes amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Bytes to send back to the terminal (echo, redraw, bell).
    Output(Vec<u8>),
    /// A complete line.
    Submit(String),
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D on an empty line.
    EndOfInput,
    /// The line outgrew the limit without a terminal to refuse keys on: the client is not
    /// typing, it is flooding.
    Overflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// Saw ESC.
    Start,
    /// Saw ESC [ (or ESC O), collecting parameters.
    Sequence,
}

pub struct LineEditor {
    /// Whether a terminal is attached (echo and redraw).
    echo: bool,
    prompt: String,
    max_line: usize,
    line: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing history; `history.len()` is the line being typed.
    browsing: usize,
    /// The line being typed, kept while browsing history.
    draft: Vec<char>,
    escape: Escape,
    /// A `\r` was just submitted: a following `\n` belongs to it.
    after_cr: bool,
    /// Incomplete UTF-8 carried over to the next chunk.
    pending_utf8: Vec<u8>,
}

impl LineEditor {
    pub fn new(echo: bool, prompt: impl Into<String>, max_line: usize) -> Self {
        Self {
            echo,
            prompt: prompt.into(),
            max_line,
            line: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            browsing: 0,
            draft: Vec::new(),
            escape: Escape::None,
            after_cr: false,
            pending_utf8: Vec::new(),
        }
    }

    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// Feeds input bytes; returns what they did, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut output = Vec::new();
        let mut input = std::mem::take(&mut self.pending_utf8);
        input.extend_from_slice(bytes);
        let text = match std::str::from_utf8(&input) {
            Ok(text) => text.to_owned(),
            Err(error) if error.error_len().is_none() => {
                // A character split across chunks: keep its first bytes for the next one.
                let valid = error.valid_up_to();
                self.pending_utf8 = input[valid..].to_vec();
                String::from_utf8_lossy(&input[..valid]).into_owned()
            }
            Err(_) => String::from_utf8_lossy(&input).into_owned(),
        };
        for character in text.chars() {
            let after_cr = std::mem::take(&mut self.after_cr);
            match self.escape {
                Escape::Start => {
                    self.escape = if matches!(character, '[' | 'O') { Escape::Sequence } else { Escape::None };
                    continue;
                }
                Escape::Sequence => {
                    if character.is_ascii_digit() || character == ';' {
                        continue;
                    }
                    self.escape = Escape::None;
                    match character {
                        'A' => self.history_step(-1, &mut output),
                        'B' => self.history_step(1, &mut output),
                        'C' if self.cursor < self.line.len() => {
                            self.cursor += 1;
                            self.echo_bytes(b"\x1b[C", &mut output);
                        }
                        'D' if self.cursor > 0 => {
                            self.cursor -= 1;
                            self.echo_bytes(b"\x1b[D", &mut output);
                        }
                        _ => {}
                    }
                    continue;
                }
                Escape::None => {}
            }
            match character {
                '\x1b' => self.escape = Escape::Start,
                '\n' if after_cr => {}
                '\r' | '\n' => {
                    self.after_cr = character == '\r';
                    self.echo_bytes(b"\r\n", &mut output);
                    flush(&mut output, &mut actions);
                    let line: String = std::mem::take(&mut self.line).into_iter().collect();
                    self.cursor = 0;
                    self.draft.clear();
                    if !line.trim().is_empty() && self.history.last() != Some(&line) {
                        self.history.push(line.clone());
                        if self.history.len() > HISTORY {
                            self.history.remove(0);
                        }
                    }
                    self.browsing = self.history.len();
                    actions.push(Action::Submit(line));
                }
                '\x03' => {
                    self.line.clear();
                    self.cursor = 0;
                    self.echo_bytes(b"^C\r\n", &mut output);
                    flush(&mut output, &mut actions);
                    actions.push(Action::Interrupt);
                }
                '\x04' => {
                    if self.line.is_empty() {
                        flush(&mut output, &mut actions);
                        actions.push(Action::EndOfInput);
                    }
                }
                '\x7f' | '\x08' => {
                    if self.cursor > 0 {
                        self.cursor -= 1;
                        self.line.remove(self.cursor);
                        self.redraw(&mut output);
                    }
                }
                '\x15' => {
                    self.line.clear();
                    self.cursor = 0;
                    self.redraw(&mut output);
                }
                '\t' => self.insert(' ', &mut output, &mut actions),
                control if control.is_control() => {}
                printable => self.insert(printable, &mut output, &mut actions),
            }
        }
        flush(&mut output, &mut actions);
        actions
    }

    fn insert(&mut self, character: char, output: &mut Vec<u8>, actions: &mut Vec<Action>) {
        if self.line.len() >= self.max_line {
            if self.echo {
                // A person typing: refuse the key with a bell.
                output.push(0x07);
            } else if !actions.contains(&Action::Overflow) {
                actions.push(Action::Overflow);
            }
            return;
        }
        self.line.insert(self.cursor, character);
        self.cursor += 1;
        if self.cursor == self.line.len() {
            let mut buffer = [0; 4];
            self.echo_bytes(character.encode_utf8(&mut buffer).as_bytes(), output);
        } else {
            self.redraw(output);
        }
    }

    fn history_step(&mut self, step: isize, output: &mut Vec<u8>) {
        let target = self.browsing as isize + step;
        if target < 0 || target > self.history.len() as isize {
            return;
        }
        if self.browsing == self.history.len() {
            self.draft = self.line.clone();
        }
        self.browsing = target as usize;
        self.line = match self.history.get(self.browsing) {
            Some(entry) => entry.chars().collect(),
            None => self.draft.clone(),
        };
        self.cursor = self.line.len();
        self.redraw(output);
    }

    /// Rewrites the prompt and line, then puts the cursor back where it belongs.
    fn redraw(&self, output: &mut Vec<u8>) {
        if !self.echo {
            return;
        }
        output.extend_from_slice(b"\r\x1b[K");
        output.extend_from_slice(self.prompt.as_bytes());
        let line: String = self.line.iter().collect();
        output.extend_from_slice(line.as_bytes());
        let back = self.line.len() - self.cursor;
        if back > 0 {
            output.extend_from_slice(format!("\x1b[{back}D").as_bytes());
        }
    }

    fn echo_bytes(&self, bytes: &[u8], output: &mut Vec<u8>) {
        if self.echo {
            output.extend_from_slice(bytes);
        }
    }
}

fn flush(output: &mut Vec<u8>, actions: &mut Vec<Action>) {
    if !output.is_empty() {
        actions.push(Action::Output(std::mem::take(output)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Submit(line) => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn typing_editing_and_submitting() {
        let mut editor = LineEditor::new(true, "> ", 100);
        let actions = editor.feed(b"coutn\x7f\x7fnt items\r");
        assert_eq!(submitted(&actions), ["count items"]);
        assert!(matches!(&actions[0], Action::Output(echo) if echo.starts_with(b"cout")));
        // Left arrow twice, insert, then enter.
        let actions = editor.feed(b"tee\x1b[D\x1b[Dr\r\n");
        assert_eq!(submitted(&actions), ["tree"]);
        // Ctrl-U clears the line.
        assert_eq!(submitted(&editor.feed(b"junk\x15status\r")), ["status"]);
    }

    #[test]
    fn history_walks_back_and_forth() {
        let mut editor = LineEditor::new(true, "> ", 100);
        editor.feed(b"count items\rstatus\r");
        editor.feed(b"rec");
        editor.feed(b"\x1b[A\x1b[A");
        assert_eq!(submitted(&editor.feed(b"\r")), ["count items"]);
        editor.feed(b"rec\x1b[A\x1b[B");
        assert_eq!(submitted(&editor.feed(b"ent\r")), ["recent"], "down returns to the draft");
    }

    #[test]
    fn control_keys() {
        let mut editor = LineEditor::new(true, "> ", 100);
        assert!(editor.feed(b"half\x03").contains(&Action::Interrupt));
        assert_eq!(editor.feed(b"\x04"), [Action::EndOfInput]);
        assert_eq!(submitted(&editor.feed(b"x\x04\r")), ["x"], "Ctrl-D on a non-empty line does nothing");
    }

    #[test]
    fn without_a_terminal_nothing_is_echoed_and_floods_are_caught() {
        let mut editor = LineEditor::new(false, "> ", 8);
        let actions = editor.feed(b"status\ncount items\n");
        assert!(actions.iter().all(|action| !matches!(action, Action::Output(_))), "{actions:?}");
        assert_eq!(submitted(&actions), ["status", "count it"]);
        assert!(editor.feed(&[b'a'; 20]).contains(&Action::Overflow));
    }

    #[test]
    fn a_terminal_gets_a_bell_past_the_limit() {
        let mut editor = LineEditor::new(true, "> ", 3);
        let actions = editor.feed(b"abcd");
        assert!(matches!(actions.last(), Some(Action::Output(bytes)) if bytes.ends_with(b"\x07")));
        assert_eq!(submitted(&editor.feed(b"\r")), ["abc"]);
    }

    #[test]
    fn utf8_split_across_chunks() {
        let mut editor = LineEditor::new(false, "> ", 100);
        let bytes = "café\r".as_bytes();
        editor.feed(&bytes[..4]);
        assert_eq!(submitted(&editor.feed(&bytes[4..])), ["café"]);
    }
}
