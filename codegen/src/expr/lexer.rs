//! Expression text → tokens, each with its byte span.
//!
//! The lexer moves through the text one `char` at a time, so every position it records is a
//! `char` boundary. It stops at the first malformed token and hands the parser an
//! [`Tok::Error`] in its place: the parser reports it only when it reaches it, so the first
//! problem *in reading order* is the one reported, whether lexical or syntactic.

use super::ast::Span;
use super::error::ExprError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An integer literal's magnitude; the parser checks its range (a leading `-` may make
    /// 2^63 valid).
    Int(u64),
    Uint(u64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
    Ident(String),
    True,
    False,
    Null,
    In,
    Dollar,
    Dot,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Question,
    Colon,
    Not,
    Minus,
    Plus,
    Star,
    Slash,
    Percent,
    Lt,
    Le,
    Gt,
    Ge,
    EqEq,
    Ne,
    AndAnd,
    OrOr,
    Eof,
    Error(ExprError),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) span: Span,
}

/// Lexes the whole text. The result always ends with [`Tok::Eof`]; a lexical error is the
/// token just before it.
pub(crate) fn lex(text: &str) -> Vec<Token> {
    let mut lexer = Lexer { text, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        match lexer.next_token() {
            Ok(Some(token)) => tokens.push(token),
            Ok(None) => break,
            Err(error) => {
                let span = error.span.clone();
                tokens.push(Token {
                    tok: Tok::Error(error),
                    span,
                });
                break;
            }
        }
    }
    tokens.push(Token {
        tok: Tok::Eof,
        span: text.len()..text.len(),
    });
    tokens
}

struct Lexer<'t> {
    text: &'t str,
    pos: usize,
}

/// One decoded piece of a string or bytes literal.
enum Piece {
    Char(char),
    /// From `\xHH` or an octal escape: a byte in a bytes literal, U+00HH in a string.
    Byte(u8),
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_nth(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn slice(&self, span: Span) -> &str {
        self.text.get(span).unwrap_or("")
    }

    fn skip_trivia(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\n' | '\r' | '\x0C') => {
                    self.pos += 1;
                }
                Some('/') if self.peek_nth(1) == Some('/') => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn next_token(&mut self) -> Result<Option<Token>, ExprError> {
        self.skip_trivia();
        let start = self.pos;
        let Some(c) = self.bump() else {
            return Ok(None);
        };
        let tok = match c {
            '0'..='9' => return self.number(start).map(Some),
            'a'..='z' | 'A'..='Z' | '_' => return self.word(start).map(Some),
            '"' | '\'' => return self.string(start, c, false, false).map(Some),
            '$' => Tok::Dollar,
            '.' => Tok::Dot,
            ',' => Tok::Comma,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '?' => Tok::Question,
            ':' => Tok::Colon,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '%' => Tok::Percent,
            '!' if self.eat('=') => Tok::Ne,
            '!' => Tok::Not,
            '<' if self.eat('=') => Tok::Le,
            '<' => Tok::Lt,
            '>' if self.eat('=') => Tok::Ge,
            '>' => Tok::Gt,
            '=' if self.eat('=') => Tok::EqEq,
            '=' => {
                return Err(ExprError::new(start..self.pos, "`=` is not an operator")
                    .with_hint("compare with `==`"));
            }
            '&' if self.eat('&') => Tok::AndAnd,
            '&' => {
                return Err(ExprError::new(start..self.pos, "`&` is not an operator")
                    .with_hint("write `&&` for a logical and"));
            }
            '|' if self.eat('|') => Tok::OrOr,
            '|' => {
                return Err(ExprError::new(start..self.pos, "`|` is not an operator")
                    .with_hint("write `||` for a logical or"));
            }
            other => {
                return Err(ExprError::new(
                    start..self.pos,
                    format!("unexpected character `{}`", other.escape_debug()),
                ));
            }
        };
        Ok(Some(Token {
            tok,
            span: start..self.pos,
        }))
    }

    fn eat_digits(&mut self, radix: u32) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_digit(radix)) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self, start: usize) -> Result<Token, ExprError> {
        // `start` is just past the first digit.
        if self.slice(start..self.pos) == "0" && matches!(self.peek(), Some('x' | 'X')) {
            self.pos += 1;
            let digits_start = self.pos;
            if self.eat_digits(16) == 0 {
                return Err(ExprError::new(
                    start..self.pos,
                    "`0x` must be followed by hexadecimal digits",
                ));
            }
            let digits = self.slice(digits_start..self.pos);
            let value = u64::from_str_radix(digits, 16);
            let unsigned = self.eat('u') || self.eat('U');
            self.no_suffix(start, false)?;
            return self.integer(start, value.ok(), unsigned);
        }
        self.eat_digits(10);
        let mut is_float = false;
        if self.peek() == Some('.') && self.peek_nth(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            self.eat_digits(10);
            is_float = true;
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek_nth(1), Some('+' | '-')));
            if self.peek_nth(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1 + sign;
                self.eat_digits(10);
                is_float = true;
            } else {
                self.pos += 1 + sign;
                return Err(ExprError::new(
                    start..self.pos,
                    "the exponent of a number needs digits",
                )
                .with_hint("write it like `1e3` or `2.5e-4`"));
            }
        }
        if is_float {
            self.no_suffix(start, true)?;
            let span = start..self.pos;
            let value: f64 = self
                .slice(span.clone())
                .parse()
                .map_err(|_| ExprError::new(span.clone(), "malformed double literal"))?;
            if !value.is_finite() {
                return Err(ExprError::new(span, "double literal out of range"));
            }
            return Ok(Token {
                tok: Tok::Double(value),
                span,
            });
        }
        let value = self.slice(start..self.pos).parse::<u64>().ok();
        let unsigned = self.eat('u') || self.eat('U');
        self.no_suffix(start, false)?;
        self.integer(start, value, unsigned)
    }

    fn integer(
        &self,
        start: usize,
        value: Option<u64>,
        unsigned: bool,
    ) -> Result<Token, ExprError> {
        let span = start..self.pos;
        let Some(value) = value else {
            return Err(ExprError::new(
                span.clone(),
                format!("integer literal `{}` is too large", self.slice(span)),
            )
            .with_hint("the largest uint is 18446744073709551615u"));
        };
        let tok = if unsigned {
            Tok::Uint(value)
        } else {
            Tok::Int(value)
        };
        Ok(Token { tok, span })
    }

    /// A number runs straight into letters (`12abc`, `1.5u`): reject the whole run.
    fn no_suffix(&mut self, start: usize, is_float: bool) -> Result<(), ExprError> {
        if !self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Ok(());
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        let span = start..self.pos;
        let error = ExprError::new(
            span.clone(),
            format!("invalid number literal `{}`", self.slice(span)),
        );
        Err(if is_float {
            error.with_hint("only integers take the `u` suffix; a double is written `1.5` or `1e3`")
        } else {
            error.with_hint("integers are written `42`, `42u` or `0x2A`")
        })
    }

    fn word(&mut self, start: usize) -> Result<Token, ExprError> {
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        let word = self.slice(start..self.pos);
        if let Some(quote @ ('"' | '\'')) = self.peek() {
            let lower = word.to_ascii_lowercase();
            let prefix = match lower.as_str() {
                "b" => Some((true, false)),
                "r" => Some((false, true)),
                "br" | "rb" => Some((true, true)),
                _ => None,
            };
            if let Some((bytes, raw)) = prefix {
                self.pos += 1;
                return self.string(start, quote, bytes, raw);
            }
        }
        let tok = match word {
            "true" => Tok::True,
            "false" => Tok::False,
            "null" => Tok::Null,
            "in" => Tok::In,
            _ => Tok::Ident(word.to_owned()),
        };
        Ok(Token {
            tok,
            span: start..self.pos,
        })
    }

    /// A string or bytes literal; `start` is its first character (a prefix or the quote), and
    /// the opening quote has been consumed.
    fn string(
        &mut self,
        start: usize,
        quote: char,
        bytes: bool,
        raw: bool,
    ) -> Result<Token, ExprError> {
        let triple = self.peek() == Some(quote) && self.peek_nth(1) == Some(quote);
        if triple {
            self.pos += 2 * quote.len_utf8();
        }
        let mut text = String::new();
        let mut data = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.unterminated(start, quote, triple));
            };
            if c == quote {
                if !triple {
                    self.pos += 1;
                    break;
                }
                if self.peek_nth(1) == Some(quote) && self.peek_nth(2) == Some(quote) {
                    self.pos += 3;
                    break;
                }
            }
            if (c == '\n' || c == '\r') && !triple {
                return Err(self.unterminated(start, quote, triple));
            }
            let piece = if c == '\\' && !raw {
                let escape_start = self.pos;
                self.pos += 1;
                self.escape(escape_start, start, quote, triple)?
            } else {
                self.pos += c.len_utf8();
                Piece::Char(c)
            };
            match piece {
                Piece::Char(c) if bytes => {
                    let mut buffer = [0; 4];
                    data.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                }
                Piece::Char(c) => text.push(c),
                Piece::Byte(b) if bytes => data.push(b),
                Piece::Byte(b) => text.push(char::from(b)),
            }
        }
        let tok = if bytes {
            Tok::Bytes(data)
        } else {
            Tok::Str(text)
        };
        Ok(Token {
            tok,
            span: start..self.pos,
        })
    }

    fn unterminated(&self, start: usize, quote: char, triple: bool) -> ExprError {
        let close = if triple {
            quote.to_string().repeat(3)
        } else {
            quote.to_string()
        };
        let what = if triple {
            "unterminated string literal"
        } else {
            "unterminated string literal (strings end on the same line)"
        };
        ExprError::new(start..self.pos, what).with_hint(format!("close it with `{close}`"))
    }

    /// An escape sequence; the backslash (at `escape_start`) has been consumed.
    fn escape(
        &mut self,
        escape_start: usize,
        literal_start: usize,
        quote: char,
        triple: bool,
    ) -> Result<Piece, ExprError> {
        let Some(c) = self.bump() else {
            return Err(self.unterminated(literal_start, quote, triple));
        };
        let piece = match c {
            'a' => Piece::Char('\x07'),
            'b' => Piece::Char('\x08'),
            'f' => Piece::Char('\x0C'),
            'n' => Piece::Char('\n'),
            'r' => Piece::Char('\r'),
            't' => Piece::Char('\t'),
            'v' => Piece::Char('\x0B'),
            '\\' | '\'' | '"' | '`' | '?' => Piece::Char(c),
            'x' | 'X' => {
                let value = self.hex_digits(escape_start, 2)?;
                Piece::Byte(u8::try_from(value).unwrap_or(u8::MAX))
            }
            'u' | 'U' => {
                let value = self.hex_digits(escape_start, if c == 'u' { 4 } else { 8 })?;
                Piece::Char(char::from_u32(value).ok_or_else(|| {
                    ExprError::new(
                        escape_start..self.pos,
                        format!("`{}` is not a Unicode scalar value", self.slice(escape_start..self.pos)),
                    )
                    .with_hint("surrogates (U+D800 to U+DFFF) and values above U+10FFFF are not characters")
                })?)
            }
            '0'..='3' => {
                let mut value = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(digit) => {
                            self.pos += 1;
                            value = value * 8 + digit;
                        }
                        None => {
                            return Err(ExprError::new(
                                escape_start..self.pos,
                                "an octal escape needs three octal digits",
                            )
                            .with_hint("write it like `\\101`"));
                        }
                    }
                }
                Piece::Byte(u8::try_from(value).unwrap_or(u8::MAX))
            }
            other => {
                return Err(ExprError::new(
                    escape_start..self.pos,
                    format!("unknown escape sequence `\\{}`", other.escape_debug()),
                )
                .with_hint(
                    "valid escapes: \\n \\r \\t \\\\ \\' \\\" \\xHH \\uHHHH \\UHHHHHHHH and octal \\ooo",
                ));
            }
        };
        Ok(piece)
    }

    fn hex_digits(&mut self, escape_start: usize, count: usize) -> Result<u32, ExprError> {
        let mut value: u32 = 0;
        for _ in 0..count {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(digit) => {
                    self.pos += 1;
                    value = value.wrapping_mul(16).wrapping_add(digit);
                }
                None => {
                    let escape = self.slice(escape_start..escape_start + 2).to_owned();
                    return Err(ExprError::new(
                        escape_start..self.pos,
                        format!("`{escape}` needs {count} hexadecimal digits"),
                    ));
                }
            }
        }
        Ok(value)
    }
}
