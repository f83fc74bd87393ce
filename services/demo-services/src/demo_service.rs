//! Which demo service a server runs, with its names and default address.
//!
//! One enum rather than four entry points because the demo app, the tests and the command line
//! all pick services by name and start them the same way; the well-known ports make a demo
//! started by hand line up with the gateway's example configuration.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// One of the four demo downstream services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DemoService {
    /// `demo.users.v1.UserService`
    Users,
    /// `demo.catalog.v1.CatalogService`
    Catalog,
    /// `demo.reviews.v1.ReviewService`
    Reviews,
    /// `demo.inventory.v1.InventoryService`
    Inventory,
}

impl DemoService {
    /// Every demo service, in port order.
    pub const ALL: [DemoService; 4] = [
        DemoService::Users,
        DemoService::Catalog,
        DemoService::Reviews,
        DemoService::Inventory,
    ];

    /// Short name, as used on the command line: `"users"`, `"catalog"`, `"reviews"`,
    /// `"inventory"`.
    pub fn name(self) -> &'static str {
        match self {
            DemoService::Users => "users",
            DemoService::Catalog => "catalog",
            DemoService::Reviews => "reviews",
            DemoService::Inventory => "inventory",
        }
    }

    /// Fully-qualified gRPC service name, e.g. `"demo.users.v1.UserService"`.
    pub fn grpc_service(self) -> &'static str {
        match self {
            DemoService::Users => "demo.users.v1.UserService",
            DemoService::Catalog => "demo.catalog.v1.CatalogService",
            DemoService::Reviews => "demo.reviews.v1.ReviewService",
            DemoService::Inventory => "demo.inventory.v1.InventoryService",
        }
    }

    /// Well-known local address: `127.0.0.1:50051` (users) to `:50054` (inventory).
    pub fn default_addr(self) -> SocketAddr {
        let port = match self {
            DemoService::Users => 50051,
            DemoService::Catalog => 50052,
            DemoService::Reviews => 50053,
            DemoService::Inventory => 50054,
        };
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }
}

impl fmt::Display for DemoService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the demo services.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown demo service {0:?}, expected one of: users, catalog, reviews, inventory")]
pub struct UnknownDemoService(String);

impl FromStr for DemoService {
    type Err = UnknownDemoService;

    /// Accepts the short name (any case) or the fully-qualified gRPC service name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        DemoService::ALL
            .into_iter()
            .find(|service| {
                service.name().eq_ignore_ascii_case(wanted) || service.grpc_service() == wanted
            })
            .ok_or_else(|| UnknownDemoService(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use tonic::server::NamedService;

    use super::*;
    use crate::pb;

    #[test]
    fn names_match_the_generated_services() {
        use pb::catalog::v1::catalog_service_server::CatalogServiceServer;
        use pb::inventory::v1::inventory_service_server::InventoryServiceServer;
        use pb::reviews::v1::review_service_server::ReviewServiceServer;
        use pb::users::v1::user_service_server::UserServiceServer;
        type Users = UserServiceServer<crate::users::UserDirectory>;
        type Catalog = CatalogServiceServer<crate::catalog::ProductCatalog>;
        type Reviews = ReviewServiceServer<crate::reviews::ReviewArchive>;
        type Inventory = InventoryServiceServer<crate::inventory::StockLedger>;
        assert_eq!(DemoService::Users.grpc_service(), Users::NAME);
        assert_eq!(DemoService::Catalog.grpc_service(), Catalog::NAME);
        assert_eq!(DemoService::Reviews.grpc_service(), Reviews::NAME);
        assert_eq!(DemoService::Inventory.grpc_service(), Inventory::NAME);
    }

    #[test]
    fn parses_and_prints() {
        for service in DemoService::ALL {
            assert_eq!(service.name().parse(), Ok(service));
            assert_eq!(service.grpc_service().parse(), Ok(service));
            assert_eq!(service.to_string(), service.name());
        }
        assert_eq!("USERS".parse(), Ok(DemoService::Users));
        let err = "payments".parse::<DemoService>().expect_err("unknown");
        assert!(err.to_string().contains("payments"));
    }

    #[test]
    fn default_ports_are_distinct_and_local() {
        let ports: Vec<u16> = DemoService::ALL
            .iter()
            .map(|s| s.default_addr().port())
            .collect();
        assert_eq!(ports, vec![50051, 50052, 50053, 50054]);
        assert!(
            DemoService::ALL
                .iter()
                .all(|s| s.default_addr().ip().is_loopback())
        );
    }
}
