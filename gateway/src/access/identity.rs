//! The identity of a client certificate: the subject alternative names a policy can name.
//!
//! The certificate has been verified by rustls against `client_ca` before this reads it; this
//! only decodes the SAN extension (with `x509-cert`), once per connection.

use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// What a verified client certificate says its holder is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// `URI` SANs, such as SPIFFE ids (`spiffe://trust.domain/ns/prod/sa/web`).
    pub uris: Vec<String>,
    /// `DNS` SANs.
    pub dns_names: Vec<String>,
}

impl PeerIdentity {
    /// The identity of the certificate `der`, when it has SANs.
    pub fn of_certificate(der: &[u8]) -> Option<Self> {
        let certificate = Certificate::from_der(der).ok()?;
        let (_, names) = certificate
            .tbs_certificate()
            .get_extension::<SubjectAltName>()
            .ok()??;
        let mut identity = PeerIdentity::default();
        for name in names.0 {
            match name {
                GeneralName::UniformResourceIdentifier(uri) => identity.uris.push(uri.to_string()),
                GeneralName::DnsName(dns) => identity.dns_names.push(dns.to_string()),
                _ => {}
            }
        }
        Some(identity)
    }

    /// The name a caller with this certificate goes by: its first URI SAN, else its first DNS
    /// SAN.
    pub fn name(&self) -> Option<&str> {
        self.uris
            .first()
            .or_else(|| self.dns_names.first())
            .map(String::as_str)
    }
}
