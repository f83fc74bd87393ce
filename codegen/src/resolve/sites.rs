//! Where things are in the proto source: option sites, the span of a value inside an aggregate
//! option, and source-info paths.

use std::sync::Arc;

use prost_reflect::FieldDescriptor;

use super::Resolver;
use crate::diagnostic::{SourceFile, Span};
use crate::load::Loaded;
use crate::source::{OptionTree, PathSegment, ValueSpan, option_value};

impl Resolver<'_> {
    /// The location of the element at `path` in `file` (a protobuf source-info path).
    pub(super) fn site(
        &self,
        file_name: &str,
        path: &[i32],
        aggregate: bool,
    ) -> Option<OptionSite> {
        option_site(self.loaded, file_name, path, aggregate)
    }

    pub(super) fn span_of_site(site: &Option<OptionSite>) -> Option<Span> {
        site.as_ref().map(|s| Span::new(&s.file, s.whole.clone()))
    }

    /// The span of a value inside an aggregate option, falling back to the whole option.
    pub(super) fn value_span(
        site: &Option<OptionSite>,
        path: &[PathSegment],
    ) -> (Option<Span>, Option<ValueSpan>) {
        let Some(site) = site else {
            return (None, None);
        };
        let value = site.tree.as_ref().and_then(|t| t.value(path)).cloned();
        match &value {
            Some(v) => (Some(Span::new(&site.file, v.range.clone())), value),
            None => {
                let name = site.tree.as_ref().and_then(|t| t.name(path));
                let range = name.unwrap_or_else(|| site.whole.clone());
                (Some(Span::new(&site.file, range)), None)
            }
        }
    }

    /// Where the `by` of a field's rule lies: the string of `(mosaic.v1.field).by = "..."`
    /// (`path` is that option's source path), or the `by` inside the aggregate form
    /// `(mosaic.v1.field) = { by: "..." }`.
    pub(super) fn field_rule_span(
        &self,
        field: &FieldDescriptor,
        path: &[i32],
    ) -> (Option<Span>, Option<ValueSpan>) {
        self.field_rule_key_span(field, path, "by")
    }

    /// Like [`field_rule_span`](Self::field_rule_span), for the rule's `key` (whose field
    /// number ends `path`).
    pub(super) fn field_rule_key_span(
        &self,
        field: &FieldDescriptor,
        path: &[i32],
        key: &str,
    ) -> (Option<Span>, Option<ValueSpan>) {
        let file_name = field.parent_file().name().to_owned();
        if let Some(site) = self.site(&file_name, path, false) {
            return match option_value(&site.file.text, site.whole.start) {
                Some(value) => (
                    Some(Span::new(&site.file, value.range.clone())),
                    Some(value),
                ),
                None => (Some(Span::new(&site.file, site.whole.clone())), None),
            };
        }
        let aggregate = &path[..path.len().saturating_sub(1)];
        let site = self.site(&file_name, aggregate, true);
        if site.is_some() {
            return Self::value_span(&site, &[(key.to_owned(), 0)]);
        }
        let site = self.site(&file_name, field.path(), false);
        (Self::span_of_site(&site), None)
    }
}

/// Where an option value lies: a span in a file, and for aggregates the scanned tree.
#[derive(Clone)]
pub(crate) struct OptionSite {
    pub(crate) file: Arc<SourceFile>,
    pub(crate) tree: Option<Arc<OptionTree>>,
    pub(crate) whole: std::ops::Range<usize>,
}

/// The location of the element at `path` in `file_name` (a protobuf source-info path); for an
/// aggregate option, its value's fields are scanned too.
pub(crate) fn option_site(
    loaded: &Loaded,
    file_name: &str,
    path: &[i32],
    aggregate: bool,
) -> Option<OptionSite> {
    let file = loaded.sources.get(file_name).cloned()?;
    let descriptor = loaded.pool.get_file_by_name(file_name)?;
    let info = descriptor
        .file_descriptor_proto()
        .source_code_info
        .as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let (start_line, start_col) = (
        *location.span.first()? as usize,
        *location.span.get(1)? as usize,
    );
    let (end_line, end_col) = match location.span.len() {
        3 => (start_line, location.span[2] as usize),
        _ => (
            *location.span.get(2)? as usize,
            *location.span.get(3)? as usize,
        ),
    };
    let start = file.offset_of(start_line, start_col);
    let end = file.offset_of(end_line, end_col);
    let tree = aggregate.then(|| Arc::new(OptionTree::scan(&file.text, start)));
    Some(OptionSite {
        file,
        tree,
        whole: start..end,
    })
}

/// The span of bytes `decoded` of a string value, or the whole value when they cannot be
/// mapped.
pub(super) fn sub_span(
    span: &Option<Span>,
    value: &Option<ValueSpan>,
    decoded: std::ops::Range<usize>,
) -> Option<Span> {
    match (span, value) {
        (Some(s), Some(v)) => Some(Span::new(&s.file, v.sub_range(decoded))),
        (s, _) => s.clone(),
    }
}

pub(super) fn with(base: &[PathSegment], name: &str) -> Vec<PathSegment> {
    with_index(base, name, 0)
}

pub(super) fn with_index(base: &[PathSegment], name: &str, index: usize) -> Vec<PathSegment> {
    let mut path = base.to_vec();
    path.push((name.to_owned(), index));
    path
}
