//! Request checks shared by the demo services, so every service words its errors alike.
//!
//! The gateway's tests assert on status codes and messages coming back through composition,
//! so the rules are uniform: a non-positive id is INVALID_ARGUMENT naming the field and value
//! ("id must be positive, got -3"); an unknown id is NOT_FOUND naming the entity and id
//! ("user 4242 not found"); limits have a default for 0, a cap, and reject negatives.

use tonic::Status;

/// Most ids a batch call accepts.
pub(crate) const MAX_BATCH: usize = 100;

/// Accepts `id` if it is positive.
pub(crate) fn positive_id(field: &str, id: i64) -> Result<i64, Status> {
    if id > 0 {
        Ok(id)
    } else {
        Err(Status::invalid_argument(format!(
            "{field} must be positive, got {id}"
        )))
    }
}

/// Checks a batch of ids: 1 to [`MAX_BATCH`] of them, each positive.
pub(crate) fn batch_ids(ids: &[i64]) -> Result<(), Status> {
    if ids.is_empty() {
        return Err(Status::invalid_argument("ids must not be empty"));
    }
    if ids.len() > MAX_BATCH {
        return Err(Status::invalid_argument(format!(
            "ids must hold at most {MAX_BATCH} ids, got {}",
            ids.len()
        )));
    }
    for (i, &id) in ids.iter().enumerate() {
        positive_id(&format!("ids[{i}]"), id)?;
    }
    Ok(())
}

/// Resolves a page size or limit: 0 means `default`, values above `max` are capped, negative
/// values are rejected.
pub(crate) fn limit(field: &str, value: i32, default: usize, max: usize) -> Result<usize, Status> {
    match usize::try_from(value) {
        Ok(0) => Ok(default),
        Ok(n) => Ok(n.min(max)),
        Err(_) => Err(Status::invalid_argument(format!(
            "{field} must not be negative, got {value}"
        ))),
    }
}

/// NOT_FOUND for an unknown entity, e.g. "user 4242 not found".
pub(crate) fn not_found(entity: &str, id: i64) -> Status {
    Status::not_found(format!("{entity} {id} not found"))
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn ids_must_be_positive() {
        assert_eq!(positive_id("id", 7).ok(), Some(7));
        let err = positive_id("id", -3).expect_err("negative");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(err.message(), "id must be positive, got -3");
        assert!(positive_id("id", 0).is_err());
    }

    #[test]
    fn batches_are_bounded() {
        assert!(batch_ids(&[1, 2, 2]).is_ok());
        let empty = batch_ids(&[]).expect_err("empty");
        assert_eq!(empty.message(), "ids must not be empty");
        let big: Vec<i64> = (1..=101).collect();
        let too_many = batch_ids(&big).expect_err("too many");
        assert_eq!(too_many.code(), Code::InvalidArgument);
        assert_eq!(too_many.message(), "ids must hold at most 100 ids, got 101");
        let bad = batch_ids(&[1, 0]).expect_err("zero id");
        assert_eq!(bad.message(), "ids[1] must be positive, got 0");
    }

    #[test]
    fn limits_default_cap_and_reject_negatives() {
        assert_eq!(limit("limit", 0, 10, 100).ok(), Some(10));
        assert_eq!(limit("limit", 7, 10, 100).ok(), Some(7));
        assert_eq!(limit("limit", 1_000, 10, 100).ok(), Some(100));
        let err = limit("limit", -1, 10, 100).expect_err("negative");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(err.message(), "limit must not be negative, got -1");
    }

    #[test]
    fn not_found_names_the_id() {
        let status = not_found("user", 4242);
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "user 4242 not found");
    }
}
