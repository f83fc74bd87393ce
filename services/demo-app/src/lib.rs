//! The demo's generated code: the storefront and mobile shop edge APIs composed from the demo
//! services, plus prost types and tonic clients for everything they call; and the one piece of
//! Rust the mobile shop's composition asks for, its price labels.

include!(concat!(env!("OUT_DIR"), "/mosaic.rs"));

use demo::catalog::v1::{GetProductResponse, Money};
use demo::mobile::v1::{GetProductCardRequest, MobileShopComposer, MobileShopResolvers};
use mosaic_gateway::compose::{Deployment, DeploymentError, Downstreams, Status};

/// The mobile shop's custom items: its price labels.
#[derive(Clone, Copy, Debug, Default)]
pub struct MobileResolvers;

#[mosaic_gateway::compose::async_trait]
impl MobileShopResolvers for MobileResolvers {
    async fn product_card_label(
        &self,
        _input: &GetProductCardRequest,
        p: &GetProductResponse,
    ) -> Result<String, Status> {
        Ok(p.product
            .as_ref()
            .and_then(|product| product.price.as_ref())
            .map(price_label)
            .unwrap_or_default())
    }
}

/// The mobile shop's composer, calling the demo services through `downstreams`, with its
/// deployment values (`highlight_rating`) from `deployment`.
pub fn mobile_shop(
    downstreams: Downstreams,
    deployment: &Deployment,
) -> Result<MobileShopComposer, DeploymentError> {
    MobileShopComposer::new(downstreams, MobileResolvers, deployment)
}

/// `$12.99`, `€5.50`, `12.00 CHF`: cents from the nanos, rounded down, the symbol where the
/// currency has a common one.
pub fn price_label(money: &Money) -> String {
    let cents = money.nanos.clamp(0, 999_999_999) / 10_000_000;
    let amount = format!("{}.{cents:02}", money.units);
    match money.currency_code.as_str() {
        "USD" => format!("${amount}"),
        "EUR" => format!("€{amount}"),
        "GBP" => format!("£{amount}"),
        code => format!("{amount} {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_labels() {
        let money = |code: &str, units, nanos| Money {
            currency_code: code.to_owned(),
            units,
            nanos,
        };
        assert_eq!(price_label(&money("USD", 12, 990_000_000)), "$12.99");
        assert_eq!(price_label(&money("EUR", 5, 500_000_000)), "€5.50");
        assert_eq!(price_label(&money("CHF", 12, 0)), "12.00 CHF");
        assert_eq!(price_label(&money("USD", 0, 5_000_000)), "$0.00");
    }
}
