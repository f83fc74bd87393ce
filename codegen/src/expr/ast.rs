//! The syntax tree the parser produces and the checker reads.
//!
//! Every node carries the exact byte span of the text it was parsed from. Parentheses belong to
//! the span of what they enclose: in `(a + b) * c` the sum's span is `(a + b)`, so a parent's
//! span is always the union of its children's spans and its own tokens.

use std::fmt;
use std::ops::Range;

/// A byte range into the expression text.
pub type Span = Range<usize>;

/// A parsed expression: its syntax tree and the text it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub(crate) text: String,
    pub(crate) root: Node,
}

impl Expr {
    /// The expression text, as given to [`parse`](super::parse).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The root of the syntax tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Every name the expression reads at its root (`$` or a step name), once per occurrence,
    /// in source order, with the span of the name itself: `$.a + rs.b` gives `$` and `rs`.
    /// Function names (`size` in `size(x)`) and field names are not names.
    pub fn names(&self) -> Vec<(String, Span)> {
        let mut names = Vec::new();
        collect_names(&self.root, &mut Vec::new(), &mut names);
        names
    }
}

/// The macros that bind an iteration variable: `xs.map(x, e)` and the like.
pub(crate) const MACROS: &[&str] = &["map", "filter", "exists", "all", "exists_one"];

/// The free names of `node`: those not bound by an enclosing macro's variable.
fn collect_names(node: &Node, bound: &mut Vec<String>, names: &mut Vec<(String, Span)>) {
    match &node.kind {
        NodeKind::Name(ident) => {
            if !bound.contains(&ident.name) {
                names.push((ident.name.clone(), ident.span.clone()));
            }
        }
        NodeKind::Call {
            target: Some(target),
            function,
            args,
        } if MACROS.contains(&function.name.as_str())
            && matches!(args.as_slice(), [var, _] if matches!(var.kind, NodeKind::Name(_))) =>
        {
            collect_names(target, bound, names);
            if let [var, body] = args.as_slice()
                && let NodeKind::Name(var) = &var.kind
            {
                bound.push(var.name.clone());
                collect_names(body, bound, names);
                bound.pop();
            }
        }
        kind => {
            for child in kind.children() {
                collect_names(child, bound, names);
            }
        }
    }
}

/// One node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node is.
    pub kind: NodeKind,
    /// The text it was parsed from, parentheses included.
    pub span: Span,
    /// Height of the subtree (a leaf is 1); bounded by the parser so that every recursive walk
    /// over the tree (checking, emission, even `Drop`) stays shallow.
    pub(crate) depth: u32,
}

/// The kinds of syntax node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `42`, `42u`, `1.5`, `'text'`, `b"bytes"`, `true`, `null`.
    Literal(Literal),
    /// `$` or an identifier: a name in scope.
    Name(Ident),
    /// `operand.field`.
    Select {
        /// What the field is selected from.
        operand: Box<Node>,
        /// The field name, with its own span.
        field: Ident,
    },
    /// `operand[index]`.
    Index {
        /// The list or map.
        operand: Box<Node>,
        /// The index or key.
        index: Box<Node>,
    },
    /// `function(args)` or `target.function(args)`.
    Call {
        /// The receiver of a method call (`x` in `x.size()`).
        target: Option<Box<Node>>,
        /// The function name.
        function: Ident,
        /// The arguments.
        args: Vec<Node>,
    },
    /// `!operand` or `-operand`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Node>,
    },
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The operator's own span.
        op_span: Span,
        /// The left operand.
        lhs: Box<Node>,
        /// The right operand.
        rhs: Box<Node>,
    },
    /// `cond ? then : otherwise`.
    Conditional {
        /// The condition.
        cond: Box<Node>,
        /// The value when it holds.
        then: Box<Node>,
        /// The value when it does not.
        otherwise: Box<Node>,
    },
    /// `[a, b, c]`.
    List(Vec<Node>),
    /// `{k1: v1, k2: v2}`.
    Map(Vec<(Node, Node)>),
    /// `pkg.Msg{a: 1, b: "x"}`: a message literal.
    Message {
        /// The message's name as written (`Msg` or `pkg.Msg`), with its span.
        name: Ident,
        /// The fields set, in order, each with its value.
        fields: Vec<(Ident, Node)>,
    },
}

impl NodeKind {
    /// The direct children, in source order.
    pub fn children(&self) -> Vec<&Node> {
        match self {
            NodeKind::Literal(_) | NodeKind::Name(_) => Vec::new(),
            NodeKind::Select { operand, .. } | NodeKind::Unary { operand, .. } => vec![operand],
            NodeKind::Index { operand, index } => vec![operand, index],
            NodeKind::Call { target, args, .. } => {
                target.iter().map(|t| &**t).chain(args).collect()
            }
            NodeKind::Binary { lhs, rhs, .. } => vec![lhs, rhs],
            NodeKind::Conditional {
                cond,
                then,
                otherwise,
            } => vec![cond, then, otherwise],
            NodeKind::List(items) => items.iter().collect(),
            NodeKind::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
            NodeKind::Message { fields, .. } => fields.iter().map(|(_, value)| value).collect(),
        }
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `42`, `-3`, `0x1F`.
    Int(i64),
    /// `42u`.
    Uint(u64),
    /// `1.5`, `1e3`.
    Double(f64),
    /// `'text'`, `"text"`, `r'raw'`, `'''multi-line'''`, escapes decoded.
    String(String),
    /// `b'bytes'`, escapes decoded.
    Bytes(Vec<u8>),
    /// `true`, `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// An identifier with its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The name as written.
    pub name: String,
    /// Where it is.
    pub span: Span,
}

/// Prefix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!`
    Not,
    /// `-`
    Neg,
}

/// Infix operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
}

impl fmt::Display for UnaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnaryOp::Not => "!",
            UnaryOp::Neg => "-",
        })
    }
}

impl fmt::Display for BinaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        })
    }
}
