//! Run-time helpers for expressions compiled from the composition language.
//!
//! `mosaic-codegen` turns each expression of a composition rule into plain Rust at build time;
//! that Rust calls these helpers for everything that is more than an operator: reading unset
//! message fields, checked integer arithmetic, indexing, conversions, comparisons across
//! number types. Nothing here interprets an expression.
//!
//! # Errors
//!
//! No helper panics. Those that can fail return a [`Status`], always with code
//! `INVALID_ARGUMENT`, and a message that quotes the expression's source text, for example:
//!
//! | failure | message |
//! |---|---|
//! | integer overflow | ``integer overflow in `$.a + $.b` `` |
//! | division or remainder by zero | ``division by zero in `$.a / $.b` `` |
//! | index out of range | ``index 7 out of range for a list of 3 in `rs.reviews[7]` `` |
//! | missing map key | ``no key "x" in the map in `$.labels["x"]` `` |
//! | failed conversion | ``cannot convert "abc" to int in `int($.s)` `` |
//!
//! Why one code, and why `INVALID_ARGUMENT`: an evaluation error depends only on the data it
//! evaluated, so retrying cannot help, and it is the request (or what the downstreams returned
//! for it) that the rule could not handle. `OUT_OF_RANGE` would suggest that iterating further
//! is possible, which is not the case. The quoted expression lets whoever owns the rule find it.
//!
//! # Representation
//!
//! Values are what prost generates: `i64`/`i32`, `u64`/`u32`, `f64`/`f32`, `bool`, `String`,
//! `Vec<u8>`, `i32` for enums, message structs, `Vec<T>` and `BTreeMap<K, V>`. Narrower stored
//! numbers are widened (`i32` → `i64`) by the generic helpers below.

use std::any::{Any, TypeId};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{OnceLock, PoisonError, RwLock};

use tonic::Status;

mod time;
pub use self::time::*;

/// `xs.map(x, e)`: `e` for each element, in order; the first failure ends it.
pub fn map_list<'a, T, U>(
    items: &'a [T],
    f: impl FnMut(&'a T) -> Result<U, Status>,
) -> Result<Vec<U>, Status> {
    items.iter().map(f).collect()
}

/// `xs.filter(x, c)`: the elements for which `c` holds, in order.
pub fn filter_list<T: Clone>(
    items: &[T],
    mut f: impl FnMut(&T) -> Result<bool, Status>,
) -> Result<Vec<T>, Status> {
    let mut kept = Vec::new();
    for item in items {
        if f(item)? {
            kept.push(item.clone());
        }
    }
    Ok(kept)
}

/// `xs.exists(x, c)`: whether `c` holds for some element; stops at the first.
pub fn exists<T>(
    items: &[T],
    mut f: impl FnMut(&T) -> Result<bool, Status>,
) -> Result<bool, Status> {
    for item in items {
        if f(item)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `xs.all(x, c)`: whether `c` holds for every element; stops at the first that fails it.
pub fn all<T>(items: &[T], mut f: impl FnMut(&T) -> Result<bool, Status>) -> Result<bool, Status> {
    for item in items {
        if !f(item)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `xs.exists_one(x, c)`: whether `c` holds for exactly one element.
pub fn exists_one<T>(
    items: &[T],
    mut f: impl FnMut(&T) -> Result<bool, Status>,
) -> Result<bool, Status> {
    let mut found = false;
    for item in items {
        if f(item)? {
            if found {
                return Ok(false);
            }
            found = true;
        }
    }
    Ok(found)
}

/// The member of oneof `oneof` (`package.Message.oneof`) to set: the index of the one of
/// `members` (each a name and whether its condition holds) that holds, `None` when none does.
/// Two that hold at once fail with `INTERNAL`: the composition's conditions overlap.
pub fn one_member(
    oneof: &'static str,
    members: &[(&'static str, bool)],
) -> Result<Option<usize>, Status> {
    let mut chosen: Option<usize> = None;
    for (index, (name, holds)) in members.iter().enumerate() {
        if !holds {
            continue;
        }
        if let Some(first) = chosen {
            return Err(crate::grpc::status::ComposeError::OneofConflict {
                oneof,
                first: members[first].0,
                second: name,
            }
            .to_status());
        }
        chosen = Some(index);
    }
    Ok(chosen)
}

/// `partial()`: whether an `error` handler of the edge call ignored a failed step so far.
pub fn partial() -> bool {
    crate::grpc::context::partial()
}

/// The value of a singular message field (or a proto3 `optional` field), or the type's
/// default instance when it is unset: as in proto and CEL, reading through an unset message
/// gives defaults rather than an error.
///
/// Returns a reference either way, so a chain `a.b.c` borrows all the way down and clones
/// nothing.
pub fn or_default<T: Default + Send + Sync + 'static>(field: &Option<T>) -> &T {
    match field {
        Some(value) => value,
        None => default_ref(),
    }
}

/// [`or_default`] for a string field with presence. Not generic: where the caller expects a
/// `&str`, inference would otherwise pick `T = str`, which has no default.
pub fn or_empty_string(field: &Option<String>) -> &String {
    field.as_ref().unwrap_or_else(|| empty_string())
}

/// [`or_default`] for a bytes field with presence (see [`or_empty_string`]).
pub fn or_empty_bytes(field: &Option<Vec<u8>>) -> &Vec<u8> {
    field.as_ref().unwrap_or_else(|| empty_bytes())
}

/// The empty string, for an unset string oneof member (see [`or_empty_string`]).
pub fn empty_string() -> &'static String {
    static EMPTY: String = String::new();
    &EMPTY
}

/// Empty bytes, for an unset bytes oneof member (see [`or_empty_string`]).
pub fn empty_bytes() -> &'static Vec<u8> {
    static EMPTY: Vec<u8> = Vec::new();
    &EMPTY
}

/// [`or_default`] for a message field that prost boxes (`Option<Box<M>>`, on recursive
/// messages).
pub fn or_default_boxed<T: Default + Send + Sync + 'static>(field: &Option<Box<T>>) -> &T {
    match field {
        Some(value) => value,
        None => default_ref(),
    }
}

/// The message in a boxed oneof variant, as a plain reference.
// The parameter type is what matching on `&Option<Enum>` gives the generated code.
#[allow(clippy::borrowed_box)]
pub fn unbox<T>(value: &Box<T>) -> &T {
    value
}

/// A shared default instance of `T`.
///
/// Each type's default is built once and kept for the life of the process (one small,
/// bounded allocation per message type that is ever read unset); later reads take a read lock
/// and a hash lookup.
pub fn default_ref<T: Default + Send + Sync + 'static>() -> &'static T {
    type Defaults = RwLock<HashMap<TypeId, &'static (dyn Any + Send + Sync)>>;
    static DEFAULTS: OnceLock<Defaults> = OnceLock::new();
    let defaults = DEFAULTS.get_or_init(Default::default);
    let id = TypeId::of::<T>();
    let known = defaults
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .copied();
    if let Some(found) = known.and_then(|value| value.downcast_ref::<T>()) {
        return found;
    }
    let fresh: &'static T = Box::leak(Box::default());
    let stored = *defaults
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(id)
        .or_insert(fresh);
    // Another thread may have won the race; either instance is a default, so both are fine.
    stored.downcast_ref::<T>().unwrap_or(fresh)
}

fn error(message: String) -> Status {
    Status::invalid_argument(message)
}

/// A value of an expression (`expr`) stored into a narrower field of a message literal (`i64`
/// into `i32`, `u64` into `u32`, and keys and values of maps alike): out of range is
/// `INVALID_ARGUMENT` quoting the expression.
pub fn narrow<T, U: TryFrom<T>>(value: T, expr: &str) -> Result<U, Status> {
    U::try_from(value).map_err(|_| error(format!("a value out of range for its field in `{expr}`")))
}

/// [`narrow`] for every element of a list.
pub fn narrow_list<T, U: TryFrom<T>>(list: Vec<T>, expr: &str) -> Result<Vec<U>, Status> {
    list.into_iter().map(|value| narrow(value, expr)).collect()
}

/// [`narrow`] for every key and value of a map.
pub fn narrow_map<K, V, K2: TryFrom<K> + Ord, V2: TryFrom<V>>(
    map: BTreeMap<K, V>,
    expr: &str,
) -> Result<BTreeMap<K2, V2>, Status> {
    map.into_iter()
        .map(|(key, value)| Ok((narrow(key, expr)?, narrow(value, expr)?)))
        .collect()
}

/// A value that may be null (`c ? x : null`) stored into a field: `f` converts a value into
/// what the field holds (`Some(…)`, or `None` to leave it unset); null stays unset.
pub fn map_optional<T, U>(
    value: Option<T>,
    f: impl FnOnce(T) -> Result<Option<U>, Status>,
) -> Result<Option<U>, Status> {
    match value {
        Some(value) => f(value),
        None => Ok(None),
    }
}

/// `opt.orValue(d)`: the value, or `default()` (evaluated only when the value is null).
pub fn or_value<T>(
    value: Option<T>,
    default: impl FnOnce() -> Result<T, Status>,
) -> Result<T, Status> {
    match value {
        Some(value) => Ok(value),
        None => default(),
    }
}

/// A double stored into a `float` field: rounded to the nearest `f32`, as proto does.
#[allow(clippy::cast_possible_truncation)] // rounding is the conversion proto defines
pub fn to_float(value: f64) -> f32 {
    value as f32
}

/// `s.lowerAscii()`.
pub fn lower_ascii(text: &str) -> String {
    text.to_ascii_lowercase()
}

/// `s.upperAscii()`.
pub fn upper_ascii(text: &str) -> String {
    text.to_ascii_uppercase()
}

/// `s.trim()`: without leading and trailing white space (Unicode's).
pub fn trim(text: &str) -> String {
    text.trim().to_owned()
}

/// `s.split(sep)`: the parts between occurrences of `sep`; an empty `sep` splits into
/// characters, as CEL's strings extension does.
pub fn split(text: &str, separator: &str) -> Vec<String> {
    if separator.is_empty() {
        return text.chars().map(String::from).collect();
    }
    text.split(separator).map(str::to_owned).collect()
}

/// `xs.join(sep)`.
pub fn join(list: &[String], separator: &str) -> String {
    list.join(separator)
}

/// `s.reverse()`: the characters in reverse order.
pub fn reverse_string(text: &str) -> String {
    text.chars().rev().collect()
}

/// `xs.reverse()`.
pub fn reverse_list<T: Clone>(list: &[T]) -> Vec<T> {
    list.iter().rev().cloned().collect()
}

/// `xs.sort()`: ascending; doubles by IEEE 754 total order (NaN last).
pub fn sort_list<T: Clone + Sortable>(list: &[T]) -> Vec<T> {
    let mut sorted = list.to_vec();
    sorted.sort_by(Sortable::order);
    sorted
}

/// How `sort()` orders values of one type.
pub trait Sortable {
    /// Compares two values.
    fn order(&self, other: &Self) -> Ordering;
}

macro_rules! sortable_by_ord {
    ($($ty:ty),*) => {$(
        impl Sortable for $ty {
            fn order(&self, other: &Self) -> Ordering {
                self.cmp(other)
            }
        }
    )*};
}
sortable_by_ord!(i64, u64, bool, String, Vec<u8>);

impl Sortable for f64 {
    fn order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

/// `s.matches(re)`: whether `re` (RE2 syntax, checked when the protos were built) matches
/// somewhere in `text`. Each pattern is compiled once per process.
pub fn matches(text: &str, pattern: &'static str) -> bool {
    static COMPILED: OnceLock<RwLock<HashMap<&'static str, regex::Regex>>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(RwLock::default);
    if let Some(regex) = compiled
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(pattern)
    {
        return regex.is_match(text);
    }
    // The generator compiled the same pattern with the same crate, so this does not fail; if
    // it somehow did, nothing matches rather than the gateway panicking.
    let Ok(regex) = regex::Regex::new(pattern) else {
        return false;
    };
    let found = regex.is_match(text);
    compiled
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(pattern, regex);
    found
}

fn overflow(expr: &str) -> Status {
    error(format!("integer overflow in `{expr}`"))
}

fn division_by_zero(expr: &str) -> Status {
    error(format!("division by zero in `{expr}`"))
}

/// `a + b` on ints.
pub fn add_int(a: i64, b: i64, expr: &str) -> Result<i64, Status> {
    a.checked_add(b).ok_or_else(|| overflow(expr))
}

/// `a - b` on ints.
pub fn sub_int(a: i64, b: i64, expr: &str) -> Result<i64, Status> {
    a.checked_sub(b).ok_or_else(|| overflow(expr))
}

/// `a * b` on ints.
pub fn mul_int(a: i64, b: i64, expr: &str) -> Result<i64, Status> {
    a.checked_mul(b).ok_or_else(|| overflow(expr))
}

/// `a / b` on ints, truncating toward zero.
pub fn div_int(a: i64, b: i64, expr: &str) -> Result<i64, Status> {
    if b == 0 {
        return Err(division_by_zero(expr));
    }
    a.checked_div(b).ok_or_else(|| overflow(expr))
}

/// `a % b` on ints; the result has the sign of `a`.
pub fn rem_int(a: i64, b: i64, expr: &str) -> Result<i64, Status> {
    if b == 0 {
        return Err(division_by_zero(expr));
    }
    a.checked_rem(b).ok_or_else(|| overflow(expr))
}

/// `-a` on an int.
pub fn neg_int(a: i64, expr: &str) -> Result<i64, Status> {
    a.checked_neg().ok_or_else(|| overflow(expr))
}

/// `a + b` on uints.
pub fn add_uint(a: u64, b: u64, expr: &str) -> Result<u64, Status> {
    a.checked_add(b).ok_or_else(|| overflow(expr))
}

/// `a - b` on uints (below zero is an overflow).
pub fn sub_uint(a: u64, b: u64, expr: &str) -> Result<u64, Status> {
    a.checked_sub(b).ok_or_else(|| overflow(expr))
}

/// `a * b` on uints.
pub fn mul_uint(a: u64, b: u64, expr: &str) -> Result<u64, Status> {
    a.checked_mul(b).ok_or_else(|| overflow(expr))
}

/// `a / b` on uints.
pub fn div_uint(a: u64, b: u64, expr: &str) -> Result<u64, Status> {
    a.checked_div(b).ok_or_else(|| division_by_zero(expr))
}

/// `a % b` on uints.
pub fn rem_uint(a: u64, b: u64, expr: &str) -> Result<u64, Status> {
    a.checked_rem(b).ok_or_else(|| division_by_zero(expr))
}

/// `list[index]`.
pub fn index<'a, T>(list: &'a [T], index: i64, expr: &str) -> Result<&'a T, Status> {
    usize::try_from(index)
        .ok()
        .and_then(|i| list.get(i))
        .ok_or_else(|| out_of_range(index, list.len(), expr))
}

/// `list[index]` with a uint index.
pub fn index_uint<'a, T>(list: &'a [T], index: u64, expr: &str) -> Result<&'a T, Status> {
    usize::try_from(index)
        .ok()
        .and_then(|i| list.get(i))
        .ok_or_else(|| out_of_range(index, list.len(), expr))
}

fn out_of_range(index: impl fmt::Display, len: usize, expr: &str) -> Status {
    error(format!(
        "index {index} out of range for a list of {len} in `{expr}`"
    ))
}

/// `map[key]`, looking the key up by reference (`&str` for `String` keys).
pub fn index_map<'a, K, V, Q>(map: &'a BTreeMap<K, V>, key: &Q, expr: &str) -> Result<&'a V, Status>
where
    K: Borrow<Q> + Ord,
    Q: Ord + fmt::Debug + ?Sized,
{
    map.get(key).ok_or_else(|| missing_key(key, expr))
}

/// `map[key]` for numeric keys, which prost may store narrower than the expression's `i64` or
/// `u64`; a key that does not fit is simply not in the map.
pub fn index_map_as<'a, K, V, Q>(
    map: &'a BTreeMap<K, V>,
    key: Q,
    expr: &str,
) -> Result<&'a V, Status>
where
    K: TryFrom<Q> + Ord,
    Q: Copy + fmt::Debug,
{
    K::try_from(key)
        .ok()
        .and_then(|k| map.get(&k))
        .ok_or_else(|| missing_key(&key, expr))
}

fn missing_key<Q: fmt::Debug + ?Sized>(key: &Q, expr: &str) -> Status {
    error(format!("no key {key:?} in the map in `{expr}`"))
}

/// `key in map`, and `has(map.key)`.
pub fn contains_key<K, V, Q>(map: &BTreeMap<K, V>, key: &Q) -> bool
where
    K: Borrow<Q> + Ord,
    Q: Ord + ?Sized,
{
    map.contains_key(key)
}

/// `key in map` for numeric keys, which may be stored narrower.
pub fn contains_key_as<K, V, Q>(map: &BTreeMap<K, V>, key: Q) -> bool
where
    K: TryFrom<Q> + Ord,
{
    K::try_from(key).is_ok_and(|k| map.contains_key(&k))
}

/// `item in list`.
pub fn contains<T, Q>(list: &[T], item: &Q) -> bool
where
    T: PartialEq<Q>,
    Q: ?Sized,
{
    list.iter().any(|element| element == item)
}

/// `item in list` for a list stored narrower than the item (`Vec<i32>` and an `i64`).
pub fn contains_as<T, W>(list: &[T], item: W) -> bool
where
    T: Copy + Into<W>,
    W: PartialEq,
{
    list.iter().any(|element| (*element).into() == item)
}

/// A list of narrower numbers as the expression's type (`Vec<i32>` → `Vec<i64>`).
pub fn widen_list<T: Copy + Into<W>, W>(list: &[T]) -> Vec<W> {
    list.iter().map(|element| (*element).into()).collect()
}

/// A map as the expression's key and value types, whatever prost stores (identity for types
/// already equal).
pub fn widen_map<K, V, K2, V2>(map: &BTreeMap<K, V>) -> BTreeMap<K2, V2>
where
    K: Clone + Into<K2>,
    V: Clone + Into<V2>,
    K2: Ord,
{
    map.iter()
        .map(|(k, v)| (k.clone().into(), v.clone().into()))
        .collect()
}

/// A number as the expression's type, whatever prost stores (identity for equal types).
pub fn widen<T: Into<W>, W>(value: T) -> W {
    value.into()
}

/// What `size()` measures.
pub trait Size {
    /// Code points for text, bytes for bytes, elements for lists and maps.
    fn size(&self) -> usize;
}

impl Size for str {
    fn size(&self) -> usize {
        self.chars().count()
    }
}

impl Size for String {
    fn size(&self) -> usize {
        self.as_str().size()
    }
}

impl<T> Size for [T] {
    fn size(&self) -> usize {
        self.len()
    }
}

impl<T> Size for Vec<T> {
    fn size(&self) -> usize {
        self.len()
    }
}

impl<K, V> Size for BTreeMap<K, V> {
    fn size(&self) -> usize {
        self.len()
    }
}

/// `size(x)`: code points of a string, length of bytes, elements of a list or a map.
pub fn size<T: Size + ?Sized>(value: &T) -> i64 {
    i64::try_from(value.size()).unwrap_or(i64::MAX)
}

/// `a + b` on strings.
pub fn concat(a: &str, b: &str) -> String {
    let mut joined = String::with_capacity(a.len() + b.len());
    joined.push_str(a);
    joined.push_str(b);
    joined
}

/// `a + b` on lists or bytes.
pub fn concat_lists<T: Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut joined = Vec::with_capacity(a.len() + b.len());
    joined.extend_from_slice(a);
    joined.extend_from_slice(b);
    joined
}

/// A number of any expression type, for comparisons across types.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An int.
    Int(i64),
    /// A uint.
    Uint(u64),
    /// A double.
    Double(f64),
}

impl From<i64> for Number {
    fn from(value: i64) -> Self {
        Number::Int(value)
    }
}

impl From<u64> for Number {
    fn from(value: u64) -> Self {
        Number::Uint(value)
    }
}

impl From<f64> for Number {
    fn from(value: f64) -> Self {
        Number::Double(value)
    }
}

/// Compares two numbers by their exact mathematical value (`-1 < 1u`, `2 == 2.0`,
/// `9007199254740993 > 9007199254740992.0`); `None` when a NaN is involved.
pub fn compare_numbers(a: Number, b: Number) -> Option<Ordering> {
    match (a, b) {
        (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
        (Number::Uint(a), Number::Uint(b)) => Some(a.cmp(&b)),
        (Number::Double(a), Number::Double(b)) => a.partial_cmp(&b),
        (Number::Int(a), Number::Uint(b)) => Some(compare_int_uint(a, b)),
        (Number::Uint(a), Number::Int(b)) => Some(compare_int_uint(b, a).reverse()),
        (Number::Int(a), Number::Double(b)) => compare_int_double(a, b),
        (Number::Double(a), Number::Int(b)) => compare_int_double(b, a).map(Ordering::reverse),
        (Number::Uint(a), Number::Double(b)) => compare_uint_double(a, b),
        (Number::Double(a), Number::Uint(b)) => compare_uint_double(b, a).map(Ordering::reverse),
    }
}

fn compare_int_uint(a: i64, b: u64) -> Ordering {
    match u64::try_from(a) {
        Ok(a) => a.cmp(&b),
        Err(_) => Ordering::Less,
    }
}

/// 2^63 and 2^64 are exact doubles; every double strictly between the bounds truncates to a
/// value of the integer type, and the fraction decides ties.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

fn compare_int_double(a: i64, b: f64) -> Option<Ordering> {
    if b.is_nan() {
        return None;
    }
    if b >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if b < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = b.trunc();
    // In range by the checks above, so the cast is exact.
    let truncated = whole as i64;
    Some(a.cmp(&truncated).then_with(|| fraction_order(b - whole)))
}

fn compare_uint_double(a: u64, b: f64) -> Option<Ordering> {
    if b.is_nan() {
        return None;
    }
    if b >= TWO_POW_64 {
        return Some(Ordering::Less);
    }
    if b < 0.0 {
        return Some(Ordering::Greater);
    }
    let whole = b.trunc();
    let truncated = whole as u64;
    Some(a.cmp(&truncated).then_with(|| fraction_order(b - whole)))
}

/// How an integer compares with `whole + fraction` once it equals `whole`.
fn fraction_order(fraction: f64) -> Ordering {
    if fraction > 0.0 {
        Ordering::Less
    } else if fraction < 0.0 {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// `a == b` across number types.
pub fn num_eq(a: impl Into<Number>, b: impl Into<Number>) -> bool {
    compare_numbers(a.into(), b.into()) == Some(Ordering::Equal)
}

/// `a != b` across number types (true when either is NaN).
pub fn num_ne(a: impl Into<Number>, b: impl Into<Number>) -> bool {
    !num_eq(a, b)
}

/// `a < b` across number types.
pub fn num_lt(a: impl Into<Number>, b: impl Into<Number>) -> bool {
    compare_numbers(a.into(), b.into()) == Some(Ordering::Less)
}

/// `a <= b` across number types.
pub fn num_le(a: impl Into<Number>, b: impl Into<Number>) -> bool {
    matches!(
        compare_numbers(a.into(), b.into()),
        Some(Ordering::Less | Ordering::Equal)
    )
}

/// `a > b` across number types.
pub fn num_gt(a: impl Into<Number>, b: impl Into<Number>) -> bool {
    compare_numbers(a.into(), b.into()) == Some(Ordering::Greater)
}

/// `a >= b` across number types.
pub fn num_ge(a: impl Into<Number>, b: impl Into<Number>) -> bool {
    matches!(
        compare_numbers(a.into(), b.into()),
        Some(Ordering::Greater | Ordering::Equal)
    )
}

fn conversion_error(value: impl fmt::Debug, to: &str, expr: &str) -> Status {
    error(format!("cannot convert {value:?} to {to} in `{expr}`"))
}

/// `int(u)`.
pub fn int_from_uint(value: u64, expr: &str) -> Result<i64, Status> {
    i64::try_from(value).map_err(|_| conversion_error(value, "int", expr))
}

/// `int(d)`: truncates toward zero; NaN, infinities and values out of range fail.
pub fn int_from_double(value: f64, expr: &str) -> Result<i64, Status> {
    // NaN is in no range.
    if !(-TWO_POW_63..TWO_POW_63).contains(&value) {
        return Err(conversion_error(value, "int", expr));
    }
    Ok(value.trunc() as i64)
}

/// `int(s)`: a decimal integer, optionally signed.
pub fn int_from_string(value: &str, expr: &str) -> Result<i64, Status> {
    value
        .parse()
        .map_err(|_| conversion_error(value, "int", expr))
}

/// `uint(i)`.
pub fn uint_from_int(value: i64, expr: &str) -> Result<u64, Status> {
    u64::try_from(value).map_err(|_| conversion_error(value, "uint", expr))
}

/// `uint(d)`: truncates toward zero; NaN, negative values (below -1) and values out of range
/// fail.
pub fn uint_from_double(value: f64, expr: &str) -> Result<u64, Status> {
    if value.is_nan() || value >= TWO_POW_64 || value <= -1.0 {
        return Err(conversion_error(value, "uint", expr));
    }
    Ok(value.trunc() as u64)
}

/// `uint(s)`.
pub fn uint_from_string(value: &str, expr: &str) -> Result<u64, Status> {
    value
        .parse()
        .map_err(|_| conversion_error(value, "uint", expr))
}

/// `double(i)`: the nearest double.
pub fn double_from_int(value: i64) -> f64 {
    value as f64
}

/// `double(u)`: the nearest double.
pub fn double_from_uint(value: u64) -> f64 {
    value as f64
}

/// `double(s)`: decimal or exponent notation, `inf`, `NaN`.
pub fn double_from_string(value: &str, expr: &str) -> Result<f64, Status> {
    value
        .parse()
        .map_err(|_| conversion_error(value, "double", expr))
}

/// `string(x)` for ints, uints, bools and enums (their number).
pub fn string_from(value: impl fmt::Display) -> String {
    value.to_string()
}

/// `string(d)`: the shortest text that reads back as the same double, in exponent notation
/// for very large or very small magnitudes (`1e300`, not three hundred digits).
pub fn string_from_double(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-6..1e21).contains(&magnitude) || !value.is_finite() {
        value.to_string()
    } else {
        format!("{value:e}")
    }
}

/// `string(b)`: bytes that are valid UTF-8.
pub fn string_from_bytes(value: &[u8], expr: &str) -> Result<String, Status> {
    String::from_utf8(value.to_vec())
        .map_err(|_| error(format!("bytes are not valid UTF-8 in `{expr}`")))
}

/// `bytes(s)`: the UTF-8 encoding.
pub fn bytes_from_string(value: &str) -> Vec<u8> {
    value.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn message<T: fmt::Debug>(result: Result<T, Status>) -> String {
        match result {
            Ok(value) => panic!("expected an error, got {value:?}"),
            Err(status) => {
                assert_eq!(status.code(), Code::InvalidArgument);
                status.message().to_owned()
            }
        }
    }

    #[derive(Debug, Default, PartialEq)]
    struct User {
        name: String,
    }

    #[test]
    fn the_string_and_list_library() {
        assert_eq!(lower_ascii("ÀbC"), "Àbc", "ASCII only");
        assert_eq!(upper_ascii("àbc"), "àBC");
        assert_eq!(trim("  a b \t"), "a b");
        assert_eq!(split("a,b,,c", ","), ["a", "b", "", "c"]);
        assert_eq!(split("hé", ""), ["h", "é"]);
        assert_eq!(join(&split("a,b", ","), "+"), "a+b");
        assert_eq!(reverse_string("héllo"), "olléh");
        assert_eq!(reverse_list(&[1, 2, 3]), [3, 2, 1]);
        assert_eq!(sort_list(&[3i64, -1, 2]), [-1, 2, 3]);
        let sorted = sort_list(&[2.0, f64::NAN, -1.0]);
        assert_eq!(&sorted[..2], &[-1.0, 2.0]);
        assert!(sorted[2].is_nan());
        assert_eq!(sort_list(&["b".to_owned(), "a".to_owned()]), ["a", "b"]);
        assert!(matches("order-1234", r"^order-\d+$"));
        assert!(!matches("order-12a", r"^order-\d+$"));
        assert!(matches("order-12a", r"\d"), "unanchored matches anywhere");
        assert!(!matches("x", "("), "an invalid pattern matches nothing");
    }

    #[test]
    fn narrowing_a_literal_checks_the_range() {
        assert_eq!(narrow::<i64, i32>(7, "e").unwrap(), 7);
        let status = narrow::<i64, i32>(1 << 40, "Msg{n: x}").unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "a value out of range for its field in `Msg{n: x}`"
        );
        assert_eq!(narrow_list::<u64, u32>(vec![1, 2], "e").unwrap(), [1, 2]);
        assert!(narrow_list::<u64, u32>(vec![1, u64::MAX], "e").is_err());
        let map = BTreeMap::from([(1i64, 2i64)]);
        let narrowed: BTreeMap<i32, i32> = narrow_map(map, "e").unwrap();
        assert_eq!(narrowed, BTreeMap::from([(1, 2)]));
        assert_eq!(to_float(0.1), 0.1_f32);
    }

    #[test]
    fn one_member_picks_the_member_that_holds_and_refuses_two() {
        const KIND: &str = "pkg.Card.kind";
        assert_eq!(
            one_member(KIND, &[("a", false), ("b", true)]).unwrap(),
            Some(1)
        );
        assert_eq!(
            one_member(KIND, &[("a", false), ("b", false)]).unwrap(),
            None
        );
        let status = one_member(KIND, &[("a", true), ("b", false), ("c", true)]).unwrap_err();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(
            status.message(),
            "the conditions of `a` and `c`, members of oneof `pkg.Card.kind`, both hold; a oneof \
             holds one value"
        );
    }

    #[test]
    fn or_default_reads_the_value_or_a_shared_default() {
        let set = Some(User { name: "ada".into() });
        assert_eq!(or_default(&set).name, "ada");
        let unset: Option<User> = None;
        assert_eq!(or_default(&unset), &User::default());
        let first: *const User = or_default(&unset);
        let second: *const User = default_ref::<User>();
        assert_eq!(first, second, "one default instance per type");
        let boxed = Some(Box::new(User { name: "bo".into() }));
        assert_eq!(or_default_boxed(&boxed).name, "bo");
        assert_eq!(or_default_boxed::<User>(&None), &User::default());
        assert_eq!(unbox(&Box::new(3)), &3);
        assert_eq!(*default_ref::<i64>(), 0);
        assert_eq!(default_ref::<String>(), "");
    }

    #[test]
    fn int_arithmetic_is_checked() {
        assert_eq!(add_int(2, 3, "a + b").ok(), Some(5));
        assert_eq!(
            message(add_int(i64::MAX, 1, "a + b")),
            "integer overflow in `a + b`"
        );
        assert!(sub_int(i64::MIN, 1, "x").is_err());
        assert!(mul_int(i64::MAX, 2, "x").is_err());
        assert_eq!(div_int(-7, 2, "x").ok(), Some(-3));
        assert_eq!(rem_int(-7, 2, "x").ok(), Some(-1));
        assert_eq!(
            message(div_int(1, 0, "$.a / $.b")),
            "division by zero in `$.a / $.b`"
        );
        assert_eq!(
            message(rem_int(1, 0, "a % b")),
            "division by zero in `a % b`"
        );
        assert_eq!(
            message(div_int(i64::MIN, -1, "a / b")),
            "integer overflow in `a / b`"
        );
        assert!(rem_int(i64::MIN, -1, "a % b").is_err());
        assert!(neg_int(i64::MIN, "-a").is_err());
        assert_eq!(neg_int(5, "-a").ok(), Some(-5));
    }

    #[test]
    fn uint_arithmetic_is_checked() {
        assert_eq!(add_uint(2, 3, "x").ok(), Some(5));
        assert!(add_uint(u64::MAX, 1, "x").is_err());
        assert_eq!(
            message(sub_uint(1, 2, "a - b")),
            "integer overflow in `a - b`"
        );
        assert!(mul_uint(u64::MAX, 2, "x").is_err());
        assert_eq!(div_uint(7, 2, "x").ok(), Some(3));
        assert_eq!(
            message(div_uint(7, 0, "a / b")),
            "division by zero in `a / b`"
        );
        assert_eq!(
            message(rem_uint(7, 0, "a % b")),
            "division by zero in `a % b`"
        );
        assert_eq!(rem_uint(7, 4, "x").ok(), Some(3));
    }

    #[test]
    fn indexing_reports_the_length() {
        let list = vec![10, 20, 30];
        assert_eq!(index(&list, 2, "xs[2]").ok(), Some(&30));
        assert_eq!(
            message(index(&list, 7, "rs.reviews[7]")),
            "index 7 out of range for a list of 3 in `rs.reviews[7]`"
        );
        assert_eq!(
            message(index(&list, -1, "xs[-1]")),
            "index -1 out of range for a list of 3 in `xs[-1]`"
        );
        assert_eq!(index_uint(&list, 0, "xs[0u]").ok(), Some(&10));
        assert!(index_uint(&list, u64::MAX, "x").is_err());
        let empty: Vec<i64> = Vec::new();
        assert!(index(&empty, 0, "x").is_err());
    }

    #[test]
    fn map_lookups() {
        let map = BTreeMap::from([("a".to_owned(), 1i64)]);
        assert_eq!(index_map(&map, "a", "m['a']").ok(), Some(&1));
        assert_eq!(
            message(index_map(&map, "x", "m['x']")),
            "no key \"x\" in the map in `m['x']`"
        );
        assert!(contains_key(&map, "a"));
        assert!(!contains_key(&map, "b"));

        let narrow = BTreeMap::from([(5i32, "five".to_owned())]);
        assert_eq!(
            index_map_as(&narrow, 5i64, "m[5]").ok().map(String::as_str),
            Some("five")
        );
        assert_eq!(
            message(index_map_as(&narrow, 1i64 << 40, "m[k]")),
            "no key 1099511627776 in the map in `m[k]`"
        );
        assert!(contains_key_as(&narrow, 5i64));
        assert!(!contains_key_as(&narrow, i64::MAX));
    }

    #[test]
    fn membership_and_widening() {
        let names = vec!["a".to_owned(), "b".to_owned()];
        assert!(contains(&names, "b"));
        assert!(!contains(&names, "c"));
        assert!(contains(&[1i64, 2], &2i64));
        let narrow = vec![1i32, 2];
        assert!(contains_as(&narrow, 2i64));
        assert!(!contains_as(&narrow, 1i64 << 40));
        assert_eq!(widen_list::<_, i64>(&narrow), vec![1i64, 2]);
        assert_eq!(widen_list::<_, f64>(&[1.5f32]), vec![1.5f64]);
        let map = BTreeMap::from([(1i32, 2.5f32)]);
        assert_eq!(
            widen_map::<_, _, i64, f64>(&map),
            BTreeMap::from([(1i64, 2.5f64)])
        );
        assert_eq!(widen::<i32, i64>(-3), -3i64);
    }

    #[test]
    fn sizes() {
        assert_eq!(size("héllo"), 5, "code points, not bytes");
        assert_eq!(size(&"héllo".to_owned()), 5);
        assert_eq!(size(&vec![0u8; 3]), 3);
        assert_eq!(size(b"ab".as_slice()), 2);
        assert_eq!(size(&BTreeMap::from([(1, 2)])), 1);
    }

    #[test]
    fn concatenation() {
        assert_eq!(concat("ab", "cd"), "abcd");
        assert_eq!(concat_lists(&[1, 2], &[3]), vec![1, 2, 3]);
        assert_eq!(concat_lists::<u8>(b"ab", b""), b"ab".to_vec());
    }

    #[test]
    fn numbers_compare_by_value_across_types() {
        assert!(num_lt(-1i64, 0u64));
        assert!(num_gt(0u64, -1i64));
        assert!(num_eq(2i64, 2.0f64));
        assert!(num_eq(2.0f64, 2u64));
        assert!(num_lt(2i64, 2.5f64));
        assert!(num_gt(-2i64, -2.5f64));
        assert!(num_lt(-3i64, -2.5f64));
        assert!(num_gt(i64::MAX, 9.2e18f64));
        assert!(num_lt(i64::MAX, 9_223_372_036_854_775_808.0f64));
        assert!(num_gt(i64::MIN, f64::NEG_INFINITY));
        assert!(num_lt(u64::MAX, f64::INFINITY));
        assert!(num_gt(0u64, -0.5f64));
        // 2^53 + 1 is not a double: exact comparison still tells them apart.
        assert!(num_gt(9_007_199_254_740_993i64, 9_007_199_254_740_992.0f64));
        assert!(num_ge(1i64, 1u64));
        assert!(num_le(1u64, 1.0f64));
        assert!(!num_eq(f64::NAN, 1i64));
        assert!(num_ne(f64::NAN, 1i64));
        assert!(!num_lt(1u64, f64::NAN));
        assert_eq!(
            compare_numbers(Number::Double(f64::NAN), Number::Double(1.0)),
            None
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(int_from_uint(5, "x").ok(), Some(5));
        assert_eq!(
            message(int_from_uint(u64::MAX, "int($.u)")),
            "cannot convert 18446744073709551615 to int in `int($.u)`"
        );
        assert_eq!(int_from_double(-2.9, "x").ok(), Some(-2));
        assert_eq!(
            int_from_double(-9_223_372_036_854_775_808.0, "x").ok(),
            Some(i64::MIN)
        );
        assert!(int_from_double(9_223_372_036_854_775_808.0, "x").is_err());
        assert!(int_from_double(f64::NAN, "x").is_err());
        assert!(int_from_double(f64::INFINITY, "x").is_err());
        assert_eq!(int_from_string("-42", "x").ok(), Some(-42));
        assert_eq!(
            message(int_from_string("abc", "int($.s)")),
            "cannot convert \"abc\" to int in `int($.s)`"
        );
        assert_eq!(uint_from_int(3, "x").ok(), Some(3));
        assert!(uint_from_int(-1, "x").is_err());
        assert_eq!(uint_from_double(-0.5, "x").ok(), Some(0));
        assert!(uint_from_double(-1.0, "x").is_err());
        assert!(uint_from_double(18_446_744_073_709_551_616.0, "x").is_err());
        assert_eq!(uint_from_string("7", "x").ok(), Some(7));
        assert!(uint_from_string("-7", "x").is_err());
        assert_eq!(double_from_int(-3), -3.0);
        assert_eq!(double_from_uint(3), 3.0);
        assert_eq!(double_from_string("1e3", "x").ok(), Some(1000.0));
        assert!(double_from_string("one", "x").is_err());
        assert_eq!(string_from(-5i64), "-5");
        assert_eq!(string_from(true), "true");
        assert_eq!(string_from_double(1.5), "1.5");
        assert_eq!(string_from_double(1.0), "1");
        assert_eq!(string_from_double(1e300), "1e300");
        assert_eq!(string_from_double(1.5e-9), "1.5e-9");
        assert_eq!(string_from_bytes(b"hi", "x").ok().as_deref(), Some("hi"));
        assert_eq!(
            message(string_from_bytes(&[0xff], "string($.b)")),
            "bytes are not valid UTF-8 in `string($.b)`"
        );
        assert_eq!(bytes_from_string("hé"), "hé".as_bytes().to_vec());
    }
}
