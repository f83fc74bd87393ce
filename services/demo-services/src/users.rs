//! `demo.users.v1.UserService`: user lookups by id, singly and in batches.
//!
//! The batch method exists because composition gateways batch fan-out lookups (one call for
//! every review author on a page); it answers in request order and fails whole on any unknown
//! id, the strict behaviour that makes a gateway's batching bugs visible.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::data::Dataset;
use crate::pb::users::v1::user_service_server::UserService;
use crate::pb::users::v1::{
    BatchGetUsersRequest, BatchGetUsersResponse, GetUserRequest, GetUserResponse, User,
};
use crate::request::{batch_ids, not_found, positive_id};

/// Serves users from the shared [`Dataset`].
#[derive(Clone, Debug)]
pub(crate) struct UserDirectory {
    data: Arc<Dataset>,
}

impl UserDirectory {
    pub(crate) fn new(data: Arc<Dataset>) -> Self {
        Self { data }
    }

    fn lookup(&self, id: i64) -> Result<&User, Status> {
        self.data.user(id).ok_or_else(|| not_found("user", id))
    }
}

#[tonic::async_trait]
impl UserService for UserDirectory {
    async fn get_user(
        &self,
        request: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        let id = positive_id("id", request.get_ref().id)?;
        let user = self.lookup(id)?.clone();
        Ok(Response::new(GetUserResponse { user: Some(user) }))
    }

    async fn batch_get_users(
        &self,
        request: Request<BatchGetUsersRequest>,
    ) -> Result<Response<BatchGetUsersResponse>, Status> {
        let ids = &request.get_ref().ids;
        batch_ids(ids)?;
        let users = ids
            .iter()
            .map(|&id| self.lookup(id).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(BatchGetUsersResponse { users }))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    fn directory() -> UserDirectory {
        UserDirectory::new(Dataset::shared())
    }

    #[tokio::test]
    async fn get_user_answers_known_ids() {
        let response = directory()
            .get_user(Request::new(GetUserRequest { id: 42 }))
            .await
            .expect("user 42");
        let user = response.into_inner().user.expect("user set");
        assert_eq!(user.id, 42);
        assert!(!user.display_name.is_empty());
        assert!(user.email.ends_with("@example.com"));
    }

    #[tokio::test]
    async fn get_user_rejects_unknown_and_bad_ids() {
        let unknown = directory()
            .get_user(Request::new(GetUserRequest { id: 4242 }))
            .await
            .expect_err("unknown");
        assert_eq!(unknown.code(), Code::NotFound);
        assert_eq!(unknown.message(), "user 4242 not found");

        let negative = directory()
            .get_user(Request::new(GetUserRequest { id: -3 }))
            .await
            .expect_err("negative");
        assert_eq!(negative.code(), Code::InvalidArgument);
        assert_eq!(negative.message(), "id must be positive, got -3");
    }

    #[tokio::test]
    async fn batch_keeps_request_order() {
        let ids = vec![7, 3, 999, 3];
        let response = directory()
            .batch_get_users(Request::new(BatchGetUsersRequest { ids: ids.clone() }))
            .await
            .expect("batch");
        let got: Vec<i64> = response.into_inner().users.iter().map(|u| u.id).collect();
        assert_eq!(got, ids);
    }

    #[tokio::test]
    async fn batch_fails_whole_on_unknown_or_bad_input() {
        let unknown = directory()
            .batch_get_users(Request::new(BatchGetUsersRequest {
                ids: vec![1, 1001, 2],
            }))
            .await
            .expect_err("unknown");
        assert_eq!(unknown.code(), Code::NotFound);
        assert_eq!(unknown.message(), "user 1001 not found");

        let empty = directory()
            .batch_get_users(Request::new(BatchGetUsersRequest { ids: vec![] }))
            .await
            .expect_err("empty");
        assert_eq!(empty.code(), Code::InvalidArgument);

        let too_many = directory()
            .batch_get_users(Request::new(BatchGetUsersRequest {
                ids: (1..=101).collect(),
            }))
            .await
            .expect_err("too many");
        assert_eq!(too_many.code(), Code::InvalidArgument);
    }
}
