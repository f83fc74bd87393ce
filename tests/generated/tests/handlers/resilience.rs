//! `resilience.proto`: `Checkout/Prepare` (1 s) calls three `Prices` methods whose proto says
//! how to call them: `Quote` (150 ms, 4 attempts, hedged after 40 ms), `Stock` (idempotent)
//! and `Reserve` (not idempotent, one attempt, 300 ms for this step, whose call retries
//! `ABORTED` conflicts up to 3 attempts).

use std::time::{Duration, Instant};

use mosaic_generated_check::golden::resilience::v1::checkout_client::CheckoutClient;
use mosaic_generated_check::golden::resilience::v1::prices_server::PricesServer;
use mosaic_generated_check::golden::resilience::v1::{
    CheckoutComposer, PrepareRequest, Prepared, QuoteRequest, QuoteResponse, ReserveRequest,
    ReserveResponse, StockRequest, StockResponse,
};
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};

use crate::support::{Answer, Edge, Method, Prices, Stubs, assert_status, request};

/// Long enough that only the gateway's deadlines can end a call to a stalled stub.
const STALL: Duration = Duration::from_secs(30);
/// The caller's own timeout: far beyond the method's 1 s, so what ends a call is the gateway.
const CALLER: Duration = Duration::from_secs(10);

async fn start(prices: &Prices) -> (Edge, CheckoutClient<Channel>) {
    let router = Server::builder().add_service(PricesServer::new(prices.clone()));
    let edge = Edge::start(Stubs::serve(router).await, CheckoutComposer::new).await;
    let client = CheckoutClient::new(edge.channel());
    (edge, client)
}

fn prices() -> Prices {
    Prices {
        quote: Method::always(QuoteResponse { cents: 1299 }),
        reserve: Method::always(ReserveResponse {
            reservation: "R-1".into(),
        }),
        stock: Method::always(StockResponse { count: 4 }),
    }
}

fn sku() -> PrepareRequest {
    PrepareRequest {
        sku: "SKU-1".into(),
    }
}

#[tokio::test]
async fn prepare_calls_each_price_method_once_with_its_timeout() {
    let prices = prices();
    let (_edge, mut client) = start(&prices).await;

    let prepared = client.prepare(sku()).await.unwrap().into_inner();
    assert_eq!(
        prepared,
        Prepared {
            cents: 1299,
            in_stock: 4,
            reservation: "R-1".into(),
        }
    );

    let quote = prices.quote.received();
    let stock = prices.stock.received();
    let reserve = prices.reserve.received();
    assert_eq!(quote.len(), 1, "answered at once, so not hedged: {quote:?}");
    assert_eq!(
        quote[0].message,
        QuoteRequest {
            sku: "SKU-1".into()
        }
    );
    assert_eq!(
        stock.iter().map(|r| r.message.clone()).collect::<Vec<_>>(),
        [StockRequest {
            sku: "SKU-1".into()
        }]
    );
    assert_eq!(
        reserve
            .iter()
            .map(|r| r.message.clone())
            .collect::<Vec<_>>(),
        [ReserveRequest {
            sku: "SKU-1".into()
        }]
    );
    // Each call's `grpc-timeout`: the proto's 150 ms for `Quote`, the step's 300 ms for
    // `Reserve`, and what is left of the method's 1 s for `Stock`.
    fn timeout<M>(received: &[crate::support::Received<M>]) -> Duration {
        received[0].timeout.unwrap()
    }
    let ms = Duration::from_millis;
    let (quote, stock, reserve) = (timeout(&quote), timeout(&stock), timeout(&reserve));
    assert!(quote <= ms(150) && quote > ms(100), "Quote: {quote:?}");
    assert!(
        reserve <= ms(300) && reserve > ms(250),
        "Reserve: {reserve:?}"
    );
    assert!(stock < ms(1000) && stock > ms(900), "Stock: {stock:?}");
}

#[tokio::test]
async fn a_stalled_reservation_ends_at_its_timeout_with_deadline_exceeded() {
    let prices = Prices {
        reserve: Method::new(|_, _| {
            Answer::ok(ReserveResponse {
                reservation: "late".into(),
            })
            .after(STALL)
        }),
        ..prices()
    };
    let (_edge, mut client) = start(&prices).await;

    let started = Instant::now();
    let result = client.prepare(request(sku(), CALLER)).await;
    let elapsed = started.elapsed();
    assert_status(
        result,
        Code::DeadlineExceeded,
        "step `r` (golden.resilience.v1.Prices/Reserve) failed: upstream `stubs` did not \
         answer within the call's deadline of 300ms",
    );
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_millis(900),
        "the step's 300 ms, not the method's 1 s: {elapsed:?}"
    );
    assert_eq!(prices.reserve.received().len(), 1, "not retried");
}

#[tokio::test]
async fn a_stalled_stock_ends_at_the_methods_deadline() {
    let prices = Prices {
        stock: Method::new(|_, _| Answer::ok(StockResponse { count: 1 }).after(STALL)),
        ..prices()
    };
    let (_edge, mut client) = start(&prices).await;

    let started = Instant::now();
    let status = client
        .prepare(request(sku(), CALLER))
        .await
        .expect_err("the stock never answers");
    let elapsed = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // Either the stock call's own deadline (what was left of the 1 s, less the margin) or the
    // edge deadline itself ends it, whichever the timers fire first.
    let message = status.message();
    assert!(
        message == "deadline of 1s for golden.resilience.v1.Checkout/Prepare exceeded"
            || message.starts_with(
                "step `s` (golden.resilience.v1.Prices/Stock) failed: upstream `stubs` did not \
                 answer within the call's deadline of 99"
            ),
        "{message}"
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(1500),
        "the method's 1 s, not the caller's 10 s: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_slow_quote_is_hedged_and_the_hedge_wins() {
    let prices = Prices {
        quote: Method::new(|_, index| {
            let answer = Answer::ok(QuoteResponse {
                cents: 1000 + index as i64,
            });
            // The first attempt stalls (its 150 ms end it); the hedge answers at once.
            if index == 0 {
                answer.after(STALL)
            } else {
                answer
            }
        }),
        ..prices()
    };
    let (_edge, mut client) = start(&prices).await;

    let started = Instant::now();
    let prepared = client
        .prepare(request(sku(), CALLER))
        .await
        .unwrap()
        .into_inner();
    let elapsed = started.elapsed();
    assert_eq!(prepared.cents, 1001, "the hedge's answer: {prepared:?}");
    assert_eq!(
        (prepared.in_stock, prepared.reservation.as_str()),
        (4, "R-1")
    );
    let quote = prices.quote.received();
    assert_eq!(quote.len(), 2, "{quote:?}");
    assert_eq!(quote[0].previous_attempts, None);
    assert_eq!(quote[1].previous_attempts, Some(1));
    assert_eq!(
        quote[1].message,
        QuoteRequest {
            sku: "SKU-1".into()
        }
    );
    assert!(
        elapsed < Duration::from_millis(150),
        "won before the first attempt's timeout: {elapsed:?}"
    );
}

#[tokio::test]
async fn an_unavailable_reservation_is_not_retried() {
    let prices = Prices {
        reserve: Method::failing(Status::unavailable("ledger down")),
        ..prices()
    };
    let (_edge, mut client) = start(&prices).await;

    assert_status(
        client.prepare(sku()).await,
        Code::Unavailable,
        "step `r` (golden.resilience.v1.Prices/Reserve) failed: ledger down",
    );
    assert_eq!(
        prices.reserve.received().len(),
        1,
        "the step's policy retries ABORTED only"
    );
}

#[tokio::test]
async fn a_conflicting_reservation_is_retried_by_the_steps_policy() {
    let prices = Prices {
        reserve: Method::new(|_, index| {
            if index < 2 {
                Answer::err(Status::aborted("conflict: reserved meanwhile"))
            } else {
                Answer::ok(ReserveResponse {
                    reservation: "R-3".into(),
                })
            }
        }),
        ..prices()
    };
    let (_edge, mut client) = start(&prices).await;
    let prepared = client.prepare(sku()).await.unwrap().into_inner();
    assert_eq!(prepared.reservation, "R-3");
    let reserve = prices.reserve.received();
    assert_eq!(
        reserve.len(),
        3,
        "a method not idempotent, retried on its listed code"
    );
    assert_eq!(reserve[2].previous_attempts, Some(2));

    // ABORTED for another reason does not satisfy the policy's `if`.
    let sold_out = Prices {
        reserve: Method::failing(Status::aborted("sold out")),
        ..self::prices()
    };
    let (_edge, mut client) = start(&sold_out).await;
    assert_status(
        client.prepare(sku()).await,
        Code::Aborted,
        "step `r` (golden.resilience.v1.Prices/Reserve) failed: sold out",
    );
    assert_eq!(sold_out.reserve.received().len(), 1);
}

#[tokio::test]
async fn an_unavailable_stock_is_retried() {
    let prices = Prices {
        stock: Method::new(|_, index| {
            if index == 0 {
                Answer::err(Status::unavailable("warming up"))
            } else {
                Answer::ok(StockResponse { count: 6 })
            }
        }),
        ..prices()
    };
    let (_edge, mut client) = start(&prices).await;

    let prepared = client.prepare(sku()).await.unwrap().into_inner();
    assert_eq!(
        prepared,
        Prepared {
            cents: 1299,
            in_stock: 6,
            reservation: "R-1".into(),
        }
    );
    let stock = prices.stock.received();
    assert_eq!(stock.len(), 2, "{stock:?}");
    assert_eq!(stock[1].previous_attempts, Some(1));
    assert_eq!(
        stock[1].message,
        StockRequest {
            sku: "SKU-1".into()
        }
    );
}
