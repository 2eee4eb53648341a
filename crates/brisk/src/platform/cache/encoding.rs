//! A cached response body: its bytes, its ETag (a hash of the bytes, so a
//! 304 needs nothing but the cache) and its compressed forms, each made
//! once on first demand and kept next to the plain bytes.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Bodies at or below this are sent plain, as the pipeline does.
const COMPRESS_ABOVE: usize = 1024;

/// A ready-to-send JSON body.
pub struct Cached {
    body: Bytes,
    etag: HeaderValue,
    gzip: OnceLock<Option<Bytes>>,
    br: OnceLock<Option<Bytes>>,
    zstd: OnceLock<Option<Bytes>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Br,
    Zstd,
}

impl Cached {
    pub fn new(body: Bytes) -> Cached {
        let etag = etag_of(&body);
        Cached {
            body,
            etag,
            gzip: OnceLock::new(),
            br: OnceLock::new(),
            zstd: OnceLock::new(),
        }
    }

    /// The plain bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    /// Bytes held, compressed forms included (the L1 weigher's measure).
    pub fn weight(&self) -> u64 {
        // Compressed forms are made after the entry is weighed, so reserve
        // half of the body for them up front rather than let L1 outgrow its
        // bound (JSON compresses to well under a sixth per codec).
        (self.body.len() + self.body.len() / 2 + 160) as u64
    }

    /// `304` when `If-None-Match` names this body's tag; otherwise `200`
    /// with the body in the best encoding `Accept-Encoding` allows.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        if request
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| etag_matches(v, &self.etag))
        {
            let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
            not_modified
                .headers_mut()
                .insert(header::ETAG, self.etag.clone());
            return not_modified;
        }
        let encoding = if self.body.len() > COMPRESS_ABOVE {
            preferred(request)
        } else {
            Encoding::Identity
        };
        let compressed = match encoding {
            Encoding::Identity => None,
            Encoding::Gzip => self
                .gzip
                .get_or_init(|| gzip(&self.body))
                .clone()
                .map(|b| (b, "gzip")),
            Encoding::Br => self
                .br
                .get_or_init(|| brotli(&self.body))
                .clone()
                .map(|b| (b, "br")),
            Encoding::Zstd => self
                .zstd
                .get_or_init(|| zstd(&self.body))
                .clone()
                .map(|b| (b, "zstd")),
        };
        // A codec that failed (it cannot, in memory) leaves the body plain.
        let (bytes, name) = match compressed {
            Some((bytes, name)) => (bytes, Some(name)),
            None => (self.body.clone(), None),
        };
        let mut response = Response::new(Body::from(bytes));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Some(name) = name {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
        }
        response
    }
}

/// The same weak tag the pipeline gives uncached GETs: a hash of the plain
/// bytes and their length.
fn etag_of(body: &Bytes) -> HeaderValue {
    let mut hasher = std::hash::DefaultHasher::new();
    body.hash(&mut hasher);
    let tag = format!("W/\"{:016x}-{:x}\"", hasher.finish(), body.len());
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("W/\"0\""))
}

fn etag_matches(header: &HeaderValue, tag: &HeaderValue) -> bool {
    let (Ok(text), Ok(tag)) = (header.to_str(), tag.to_str()) else {
        return false;
    };
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(tag);
    text.split(',')
        .any(|candidate| candidate.trim() == "*" || opaque(candidate) == ours)
}

/// The encoding to send: the client's highest `q`, ties broken by how well
/// each compresses JSON (br, zstd, gzip); identity when it lists none.
fn preferred(request: &HeaderMap) -> Encoding {
    let mut best = (0.0_f32, Encoding::Identity);
    let rank = |e: Encoding| match e {
        Encoding::Br => 3,
        Encoding::Zstd => 2,
        Encoding::Gzip => 1,
        Encoding::Identity => 0,
    };
    for value in request.get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let encoding = match name.as_str() {
                "gzip" | "x-gzip" => Encoding::Gzip,
                "br" => Encoding::Br,
                "zstd" => Encoding::Zstd,
                _ => continue,
            };
            if q > 0.0 && (q > best.0 || (q == best.0 && rank(encoding) > rank(best.1))) {
                best = (q, encoding);
            }
        }
    }
    best.1
}

fn gzip(body: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(6),
    );
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .ok()
        .map(Bytes::from)
}

fn brotli(body: &[u8]) -> Option<Bytes> {
    let mut out = Vec::with_capacity(body.len() / 4);
    let params = brotli::enc::BrotliEncoderParams {
        quality: 5,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &body[..], &mut out, &params)
        .ok()
        .map(|_| Bytes::from(out))
}

fn zstd(body: &[u8]) -> Option<Bytes> {
    zstd::bulk::compress(body, 3).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(accept).unwrap(),
        );
        h
    }

    #[test]
    fn the_client_s_highest_q_wins_and_ties_go_to_the_better_codec() {
        assert_eq!(preferred(&HeaderMap::new()), Encoding::Identity);
        assert_eq!(preferred(&headers("gzip")), Encoding::Gzip);
        assert_eq!(preferred(&headers("gzip, br")), Encoding::Br);
        assert_eq!(preferred(&headers("br;q=0.5, gzip")), Encoding::Gzip);
        assert_eq!(preferred(&headers("br;q=0, identity")), Encoding::Identity);
        assert_eq!(preferred(&headers("zstd, gzip;q=0.9")), Encoding::Zstd);
    }
}
