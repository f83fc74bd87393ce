//! Tokens → syntax tree, by recursive descent with CEL's precedence (loosest first):
//!
//! | level | operators | associativity |
//! |---|---|---|
//! | conditional | `c ? a : b` | right |
//! | or | `\|\|` | left |
//! | and | `&&` | left |
//! | relation | `==` `!=` `<` `<=` `>` `>=` `in` (one level, as in CEL) | left |
//! | addition | `+` `-` | left |
//! | multiplication | `*` `/` `%` | left |
//! | unary | `!` `-` | prefix |
//! | member | `.f` `.f(args)` `[i]` | postfix |
//!
//! **Invariant: no input makes the parser panic or overflow the stack.** Positions come from
//! the lexer (always `char` boundaries); nesting is capped at [`MAX_DEPTH`] both while parsing
//! (`((((…`, `!!!!…`) and in the tree built (`a+a+a+…` grows the tree without recursing), so
//! the checker, the emitter and `Drop` recurse at most that deep.

use super::ast::{BinaryOp, Expr, Ident, Literal, Node, NodeKind, Span, UnaryOp};
use super::error::ExprError;
use super::lexer::{Tok, Token, lex};

/// The deepest nesting accepted, in parser recursion and in tree height. Real rules nest a
/// handful of levels (a chain `a + b + …` counts one level per operator); past this,
/// splitting the expression into steps reads better anyway. At this depth, parsing and
/// checking each take under 1 MiB of stack in unoptimized builds (measured: about 9 KiB
/// and 8 KiB per level), well within a 2 MiB test thread or an 8 MiB main thread.
pub(crate) const MAX_DEPTH: u32 = 64;

/// Parses an expression, reporting the first syntax error.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    let tokens = lex(text);
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
        nesting: 0,
        eof: Token {
            tok: Tok::Eof,
            span: text.len()..text.len(),
        },
    };
    if matches!(parser.peek(), Tok::Eof) {
        return Err(ExprError::new(0..text.len(), "the expression is empty"));
    }
    let root = parser.expr()?;
    if !matches!(parser.peek(), Tok::Eof) {
        return Err(parser.unexpected("an operator or the end of the expression"));
    }
    Ok(Expr {
        text: text.to_owned(),
        root,
    })
}

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    pos: usize,
    nesting: u32,
    /// Returned when peeking past the end (never happens: the last token is `Eof`; this keeps
    /// the parser total without indexing).
    eof: Token,
}

/// The binary operator a token stands for, with its level (loosest 0, tightest 4).
fn binary_operator(tok: &Tok) -> Option<(BinaryOp, u8)> {
    Some(match tok {
        Tok::OrOr => (BinaryOp::Or, 0),
        Tok::AndAnd => (BinaryOp::And, 1),
        Tok::EqEq => (BinaryOp::Eq, 2),
        Tok::Ne => (BinaryOp::Ne, 2),
        Tok::Lt => (BinaryOp::Lt, 2),
        Tok::Le => (BinaryOp::Le, 2),
        Tok::Gt => (BinaryOp::Gt, 2),
        Tok::Ge => (BinaryOp::Ge, 2),
        Tok::In => (BinaryOp::In, 2),
        Tok::Plus => (BinaryOp::Add, 3),
        Tok::Minus => (BinaryOp::Sub, 3),
        Tok::Star => (BinaryOp::Mul, 4),
        Tok::Slash => (BinaryOp::Div, 4),
        Tok::Percent => (BinaryOp::Rem, 4),
        _ => return None,
    })
}

impl Parser<'_> {
    fn token(&self, offset: usize) -> &Token {
        self.tokens.get(self.pos + offset).unwrap_or(&self.eof)
    }

    fn peek(&self) -> &Tok {
        &self.token(0).tok
    }

    fn span(&self) -> Span {
        self.token(0).span.clone()
    }

    fn bump(&mut self) -> Token {
        let token = self.token(0).clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn eat(&mut self, tok: &Tok) -> Option<Token> {
        if self.peek() == tok {
            Some(self.bump())
        } else {
            None
        }
    }

    fn source(&self, span: Span) -> &str {
        self.text.get(span).unwrap_or("")
    }

    /// The error for the current token not being what was `expected`. A lexical error token
    /// is reported as itself; the end of input points at the last token read.
    fn unexpected(&self, expected: &str) -> ExprError {
        let token = self.token(0);
        match &token.tok {
            Tok::Error(error) => error.clone(),
            Tok::Eof => {
                let previous = self.pos.checked_sub(1).and_then(|i| self.tokens.get(i));
                match previous {
                    Some(previous) => ExprError::new(
                        previous.span.clone(),
                        format!(
                            "expected {expected} after `{}`, found the end of the expression",
                            self.source(previous.span.clone())
                        ),
                    ),
                    None => ExprError::new(token.span.clone(), format!("expected {expected}")),
                }
            }
            _ => ExprError::new(
                token.span.clone(),
                format!(
                    "expected {expected}, found `{}`",
                    self.source(token.span.clone())
                ),
            ),
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(too_deep(self.span()));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    /// Builds a node, enforcing the height limit.
    fn node(&self, kind: NodeKind, span: Span) -> Result<Node, ExprError> {
        let depth = 1 + kind.children().iter().map(|c| c.depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(too_deep(span));
        }
        Ok(Node { kind, span, depth })
    }

    // The functions below recurse into each other once per nesting level. They only dispatch
    // and call; building nodes and errors happens in the non-recursive helpers after them, so
    // each recursive frame stays small even in unoptimized builds (where every temporary of
    // every match arm gets its own stack slot).

    /// A full expression (the conditional level), as a nested unit.
    fn expr(&mut self) -> Result<Node, ExprError> {
        self.enter()?;
        let node = self.conditional();
        self.leave();
        node
    }

    fn conditional(&mut self) -> Result<Node, ExprError> {
        let cond = self.binary(0)?;
        if self.eat(&Tok::Question).is_none() {
            return Ok(cond);
        }
        let then = self.binary(0)?;
        self.expect_colon()?;
        let otherwise = self.expr()?;
        self.conditional_node(cond, then, otherwise)
    }

    /// Binary operators of level `min_level` or tighter, by precedence climbing: one frame
    /// per operand rather than one per level.
    fn binary(&mut self, min_level: u8) -> Result<Node, ExprError> {
        let mut lhs = self.unary()?;
        while let Some((op, level)) = binary_operator(self.peek()) {
            if level < min_level {
                break;
            }
            let op_span = self.bump().span;
            // Left-associative: the right operand takes only tighter operators.
            let rhs = self.binary(level + 1)?;
            lhs = self.binary_node(op, op_span, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        let op = match self.peek() {
            Tok::Not => UnaryOp::Not,
            Tok::Minus => match self.negative_literal()? {
                Some(literal) => return Ok(literal),
                None => UnaryOp::Neg,
            },
            _ => return self.member(),
        };
        let op_start = self.bump().span.start;
        self.enter()?;
        let operand = self.unary();
        self.leave();
        self.unary_node(op, op_start, operand?)
    }

    fn member(&mut self) -> Result<Node, ExprError> {
        let mut node = self.primary()?;
        loop {
            node = match self.peek() {
                Tok::Dot => self.dot(node)?,
                Tok::LBracket => self.bracket(node)?,
                Tok::LBrace => match type_name(&node) {
                    Some(name) => self.message_literal(name, node.span.start)?,
                    None => return Ok(node),
                },
                _ => return Ok(node),
            };
        }
    }

    /// `{field: value, …}` after a message name.
    fn message_literal(&mut self, name: String, start: usize) -> Result<Node, ExprError> {
        let open = self.bump().span;
        let name = Ident {
            name,
            span: start..open.start,
        };
        let mut fields = Vec::new();
        loop {
            if let Some(close) = self.eat(&Tok::RBrace) {
                return self.node(NodeKind::Message { name, fields }, start..close.span.end);
            }
            let field = self.field_name()?;
            self.literal_colon()?;
            fields.push((field, self.expr()?));
            if self.eat(&Tok::Comma).is_some() {
                continue;
            }
            if let Some(close) = self.eat(&Tok::RBrace) {
                return self.node(NodeKind::Message { name, fields }, start..close.span.end);
            }
            return Err(self.unclosed_or_unexpected(&open));
        }
    }

    /// `{key: value, …}`.
    fn map_literal(&mut self) -> Result<Node, ExprError> {
        let open = self.bump().span;
        let mut entries = Vec::new();
        loop {
            if let Some(close) = self.eat(&Tok::RBrace) {
                return self.node(NodeKind::Map(entries), open.start..close.span.end);
            }
            let key = self.expr()?;
            self.literal_colon()?;
            entries.push((key, self.expr()?));
            if self.eat(&Tok::Comma).is_some() {
                continue;
            }
            if let Some(close) = self.eat(&Tok::RBrace) {
                return self.node(NodeKind::Map(entries), open.start..close.span.end);
            }
            return Err(self.unclosed_or_unexpected(&open));
        }
    }

    fn literal_colon(&mut self) -> Result<(), ExprError> {
        if self.eat(&Tok::Colon).is_some() {
            return Ok(());
        }
        Err(self
            .unexpected("`:`")
            .with_hint("each entry is written `name: value`"))
    }

    fn unclosed_or_unexpected(&self, open: &Span) -> ExprError {
        if matches!(self.peek(), Tok::Eof) {
            self.unclosed(open, "`}`")
        } else {
            self.unexpected("`,` or `}`")
        }
    }

    /// `.field` or `.method(args)` after `operand`.
    fn dot(&mut self, operand: Node) -> Result<Node, ExprError> {
        self.bump();
        let field = self.field_name()?;
        if self.peek() != &Tok::LParen {
            return self.select_node(operand, field);
        }
        let open = self.bump().span;
        let (args, close) = self.arguments(&open, &field.name)?;
        self.call_node(Some(operand), field, args, close.end)
    }

    /// `[index]` after `operand`.
    fn bracket(&mut self, operand: Node) -> Result<Node, ExprError> {
        let open = self.bump().span;
        let index = self.expr()?;
        let close = self.close(&Tok::RBracket, &open, "`]`")?;
        self.index_node(operand, index, close.end)
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        match self.peek() {
            Tok::LParen => self.parenthesized(),
            Tok::LBracket => self.list(),
            Tok::LBrace => self.map_literal(),
            Tok::Ident(_) => self.name_or_call(),
            _ => self.leaf(),
        }
    }

    fn parenthesized(&mut self) -> Result<Node, ExprError> {
        let open = self.bump().span;
        let mut inner = self.expr()?;
        let close = self.close(&Tok::RParen, &open, "`)`")?;
        inner.span = open.start..close.end;
        Ok(inner)
    }

    fn name_or_call(&mut self) -> Result<Node, ExprError> {
        let ident = self.ident();
        if self.peek() != &Tok::LParen {
            return self.name_node(ident);
        }
        let open = self.bump().span;
        let (args, close) = self.arguments(&open, &ident.name)?;
        self.call_node(None, ident, args, close.end)
    }

    /// Call arguments after `(`; returns them and the span of `)`.
    fn arguments(&mut self, open: &Span, function: &str) -> Result<(Vec<Node>, Span), ExprError> {
        let mut args = Vec::new();
        if let Some(close) = self.eat(&Tok::RParen) {
            return Ok((args, close.span));
        }
        loop {
            args.push(self.expr()?);
            if self.eat(&Tok::Comma).is_some() {
                continue;
            }
            if let Some(close) = self.eat(&Tok::RParen) {
                return Ok((args, close.span));
            }
            return Err(self.arguments_error(open, function));
        }
    }

    fn list(&mut self) -> Result<Node, ExprError> {
        let open = self.bump().span;
        let mut items = Vec::new();
        loop {
            if let Some(close) = self.eat(&Tok::RBracket) {
                return self.list_node(items, open.start, close.span.end);
            }
            items.push(self.expr()?);
            if self.eat(&Tok::Comma).is_some() {
                continue;
            }
            if let Some(close) = self.eat(&Tok::RBracket) {
                return self.list_node(items, open.start, close.span.end);
            }
            return Err(if matches!(self.peek(), Tok::Eof) {
                self.unclosed(&open, "`]`")
            } else {
                self.unexpected("`,` or `]`")
            });
        }
    }

    // Non-recursive helpers.

    fn expect_colon(&mut self) -> Result<(), ExprError> {
        if self.eat(&Tok::Colon).is_some() {
            return Ok(());
        }
        Err(self
            .unexpected("`:`")
            .with_hint("a conditional is written `cond ? a : b`; parenthesize one inside `a`"))
    }

    fn conditional_node(&self, cond: Node, then: Node, otherwise: Node) -> Result<Node, ExprError> {
        let span = cond.span.start..otherwise.span.end;
        self.node(
            NodeKind::Conditional {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            },
            span,
        )
    }

    fn binary_node(
        &self,
        op: BinaryOp,
        op_span: Span,
        lhs: Node,
        rhs: Node,
    ) -> Result<Node, ExprError> {
        let span = lhs.span.start..rhs.span.end;
        self.node(
            NodeKind::Binary {
                op,
                op_span,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            span,
        )
    }

    fn unary_node(&self, op: UnaryOp, start: usize, operand: Node) -> Result<Node, ExprError> {
        let span = start..operand.span.end;
        self.node(
            NodeKind::Unary {
                op,
                operand: Box::new(operand),
            },
            span,
        )
    }

    fn select_node(&self, operand: Node, field: Ident) -> Result<Node, ExprError> {
        let span = operand.span.start..field.span.end;
        self.node(
            NodeKind::Select {
                operand: Box::new(operand),
                field,
            },
            span,
        )
    }

    fn call_node(
        &self,
        target: Option<Node>,
        function: Ident,
        args: Vec<Node>,
        end: usize,
    ) -> Result<Node, ExprError> {
        let start = target
            .as_ref()
            .map_or(function.span.start, |t| t.span.start);
        self.node(
            NodeKind::Call {
                target: target.map(Box::new),
                function,
                args,
            },
            start..end,
        )
    }

    fn index_node(&self, operand: Node, index: Node, end: usize) -> Result<Node, ExprError> {
        let span = operand.span.start..end;
        self.node(
            NodeKind::Index {
                operand: Box::new(operand),
                index: Box::new(index),
            },
            span,
        )
    }

    fn list_node(&self, items: Vec<Node>, start: usize, end: usize) -> Result<Node, ExprError> {
        self.node(NodeKind::List(items), start..end)
    }

    fn name_node(&self, ident: Ident) -> Result<Node, ExprError> {
        let span = ident.span.clone();
        self.node(NodeKind::Name(ident), span)
    }

    /// The identifier at the current token (the caller checked it is one), consumed.
    fn ident(&mut self) -> Ident {
        let name = match self.peek() {
            Tok::Ident(name) => name.clone(),
            _ => String::new(),
        };
        Ident {
            name,
            span: self.bump().span,
        }
    }

    /// Consumes the closing token `close`, or reports the opening one unclosed.
    fn close(&mut self, close: &Tok, open: &Span, what: &str) -> Result<Span, ExprError> {
        match self.eat(close) {
            Some(token) => Ok(token.span),
            None => Err(self.unclosed(open, what)),
        }
    }

    fn arguments_error(&self, open: &Span, function: &str) -> ExprError {
        if matches!(self.peek(), Tok::Eof) {
            ExprError::new(
                open.clone(),
                format!("unclosed `(` of the call to `{function}`"),
            )
            .with_hint("close it with `)`")
        } else {
            self.unexpected("`,` or `)`")
        }
    }

    /// `-` directly before a number that has no member access after it is one literal, so
    /// that `-9223372036854775808` (whose magnitude alone is out of range) is valid.
    fn negative_literal(&mut self) -> Result<Option<Node>, ExprError> {
        if matches!(self.token(2).tok, Tok::Dot | Tok::LBracket | Tok::LParen) {
            return Ok(None);
        }
        let start = self.span().start;
        let end = self.token(1).span.end;
        let literal = match self.token(1).tok {
            Tok::Int(magnitude) => match 0i64.checked_sub_unsigned(magnitude) {
                Some(value) => Literal::Int(value),
                None => {
                    return Err(ExprError::new(
                        start..end,
                        format!("int literal `{}` is out of range", self.source(start..end)),
                    )
                    .with_hint("ints are 64-bit: the smallest is -9223372036854775808"));
                }
            },
            Tok::Double(value) => Literal::Double(-value),
            _ => return Ok(None),
        };
        self.bump();
        self.bump();
        self.node(NodeKind::Literal(literal), start..end).map(Some)
    }

    /// A field name after `.`: any identifier, including words that are keywords in
    /// expressions (`in`, `null`, …), since proto fields may be named so.
    fn field_name(&mut self) -> Result<Ident, ExprError> {
        let name = match self.peek() {
            Tok::Ident(name) => name.clone(),
            Tok::True | Tok::False | Tok::Null | Tok::In => self.source(self.span()).to_owned(),
            _ => return Err(self.unexpected("a field name")),
        };
        let span = self.bump().span;
        Ok(Ident { name, span })
    }

    fn unclosed(&self, open: &Span, close: &str) -> ExprError {
        if matches!(self.peek(), Tok::Eof) {
            ExprError::new(
                open.clone(),
                format!("unclosed `{}`", self.source(open.clone())),
            )
            .with_hint(format!("close it with {close}"))
        } else {
            self.unexpected(close)
        }
    }

    /// A literal, `$`, or the error for a token that cannot start a value.
    fn leaf(&mut self) -> Result<Node, ExprError> {
        let span = self.span();
        let literal = match self.peek() {
            Tok::Int(magnitude) => match i64::try_from(*magnitude) {
                Ok(value) => Literal::Int(value),
                Err(_) => {
                    return Err(ExprError::new(
                        span.clone(),
                        format!("int literal `{}` is out of range", self.source(span)),
                    )
                    .with_hint("ints are 64-bit signed; add the `u` suffix for a uint"));
                }
            },
            Tok::Uint(value) => Literal::Uint(*value),
            Tok::Double(value) => Literal::Double(*value),
            Tok::Str(value) => Literal::String(value.clone()),
            Tok::Bytes(value) => Literal::Bytes(value.clone()),
            Tok::True => Literal::Bool(true),
            Tok::False => Literal::Bool(false),
            Tok::Null => Literal::Null,
            Tok::Dollar => {
                self.bump();
                // `$env.NAME`, written together: a deployment value, one name.
                if matches!(self.peek(), Tok::Ident(name) if name == "env")
                    && self.span().start == span.end
                {
                    let env = self.bump().span;
                    let field = match (self.peek(), &self.token(1).tok) {
                        (Tok::Dot, Tok::Ident(_)) => {
                            self.bump();
                            self.ident()
                        }
                        _ => {
                            return Err(ExprError::new(
                                span.start..env.end,
                                "expected `.` and a name after `$env`",
                            )
                            .with_hint("write `$env.NAME` to read the deployment value `NAME`"));
                        }
                    };
                    let ident = Ident {
                        name: format!("$env.{}", field.name),
                        span: span.start..field.span.end,
                    };
                    return self.name_node(ident);
                }
                if let Tok::Ident(name) = self.peek() {
                    return Err(ExprError::new(
                        span.start..self.span().end,
                        format!("expected `.` after `$`, found `{name}`"),
                    )
                    .with_hint(format!("write `$.{name}` to read a field of the input")));
                }
                let ident = Ident {
                    name: "$".to_owned(),
                    span,
                };
                return self.name_node(ident);
            }
            Tok::Dot if matches!(self.token(1).tok, Tok::Int(_)) => {
                return Err(self
                    .unexpected("a value")
                    .with_hint("a number needs a digit before the point, as in `0.5`"));
            }
            _ => return Err(self.unexpected("a value")),
        };
        self.bump();
        self.node(NodeKind::Literal(literal), span)
    }
}

/// The dotted name `node` spells (`Msg`, `pkg.v1.Msg`), if it is one: what may precede a
/// message literal's `{`.
fn type_name(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Name(ident) if ident.name != "$" => Some(ident.name.clone()),
        NodeKind::Select { operand, field } => {
            type_name(operand).map(|prefix| format!("{prefix}.{}", field.name))
        }
        _ => None,
    }
}

fn too_deep(span: Span) -> ExprError {
    ExprError::new(
        span,
        format!("the expression nests too deeply (more than {MAX_DEPTH} levels)"),
    )
    .with_hint("split it into named steps with `def`")
}
