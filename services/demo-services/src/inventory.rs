//! `demo.inventory.v1.InventoryService`: stock per product, over every gRPC call shape.
//!
//! `GetStock` is what compositions call; `SumStock` (client streaming) and `WatchStock`
//! (bidirectional) exist so the gateway's pass-through of each streaming kind can be tested
//! against a real service. `WatchStock` answers each request message as it arrives rather than
//! after the client half-closes, so a test can see interleaving, and an unknown id ends the
//! stream with NOT_FOUND after the replies already sent.

use std::sync::Arc;

use futures_util::stream::{self, BoxStream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use crate::data::Dataset;
use crate::pb::inventory::v1::inventory_service_server::InventoryService;
use crate::pb::inventory::v1::{GetStockRequest, Stock, SumStockResponse};
use crate::request::{not_found, positive_id};

/// Serves stock levels from the shared [`Dataset`].
#[derive(Clone, Debug)]
pub(crate) struct StockLedger {
    data: Arc<Dataset>,
}

impl StockLedger {
    pub(crate) fn new(data: Arc<Dataset>) -> Self {
        Self { data }
    }
}

/// Looks up one product's stock with the usual id checks.
fn lookup(data: &Dataset, request: &GetStockRequest) -> Result<Stock, Status> {
    let product_id = positive_id("product_id", request.product_id)?;
    data.stock(product_id)
        .cloned()
        .ok_or_else(|| not_found("product", product_id))
}

#[tonic::async_trait]
impl InventoryService for StockLedger {
    async fn get_stock(
        &self,
        request: Request<GetStockRequest>,
    ) -> Result<Response<Stock>, Status> {
        lookup(&self.data, request.get_ref()).map(Response::new)
    }

    async fn sum_stock(
        &self,
        request: Request<Streaming<GetStockRequest>>,
    ) -> Result<Response<SumStockResponse>, Status> {
        let mut inbound = request.into_inner();
        let mut total = SumStockResponse::default();
        while let Some(message) = inbound.message().await? {
            let stock = lookup(&self.data, &message)?;
            total.products = total.products.saturating_add(1);
            total.total_available = total.total_available.saturating_add(stock.available);
        }
        Ok(Response::new(total))
    }

    type WatchStockStream = BoxStream<'static, Result<Stock, Status>>;

    async fn watch_stock(
        &self,
        request: Request<Streaming<GetStockRequest>>,
    ) -> Result<Response<Self::WatchStockStream>, Status> {
        let data = Arc::clone(&self.data);
        // State is `None` once an error has been sent: the stream then ends.
        let replies = stream::unfold(Some(request.into_inner()), move |inbound| {
            let data = Arc::clone(&data);
            async move {
                let mut inbound = inbound?;
                match inbound.message().await {
                    Ok(Some(message)) => match lookup(&data, &message) {
                        Ok(stock) => Some((Ok(stock), Some(inbound))),
                        Err(status) => Some((Err(status), None)),
                    },
                    Ok(None) => None,
                    Err(status) => Some((Err(status), None)),
                }
            }
        });
        Ok(Response::new(replies.boxed()))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[tokio::test]
    async fn get_stock_answers_and_rejects() {
        let ledger = StockLedger::new(Dataset::shared());
        let stock = ledger
            .get_stock(Request::new(GetStockRequest { product_id: 9 }))
            .await
            .expect("stock")
            .into_inner();
        assert_eq!(stock.product_id, 9);
        assert!(!stock.warehouses.is_empty());

        let unknown = ledger
            .get_stock(Request::new(GetStockRequest { product_id: 9_999 }))
            .await
            .expect_err("unknown");
        assert_eq!(unknown.code(), Code::NotFound);
        assert_eq!(unknown.message(), "product 9999 not found");

        let bad = ledger
            .get_stock(Request::new(GetStockRequest { product_id: -1 }))
            .await
            .expect_err("negative");
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert_eq!(bad.message(), "product_id must be positive, got -1");
    }
    // The streaming methods need a real `tonic::Streaming`, so they are tested through a
    // server in `server.rs`.
}
