//! `ssl_ciphers`: an OpenSSL cipher string, read as OpenSSL reads it
//! (`ssl_cipher_process_rulestr` in OpenSSL's `ssl/ssl_ciph.c`) and
//! applied to the TLS 1.2 suites rustls has. TLS 1.3 suites are not
//! chosen by this string, in OpenSSL as here.
//!
//! A rule is a cipher name or an alias (`HIGH`, `ECDHE`, `aRSA`,
//! `AESGCM`), or several joined with `+` (all must hold); `!` removes the
//! suites for good, `-` removes them (a later rule may add them again),
//! `+` moves them to the end, and a bare rule appends the suites not yet
//! in the list. `@STRENGTH` orders by key length. Rules are separated by
//! `:`, `,`, `;` or spaces. Names OpenSSL knows that select none of these
//! suites (`DHE-RSA-AES128-GCM-SHA256`, `3DES`) select nothing, as they
//! would in an OpenSSL without those suites.

/// A TLS 1.2 suite rustls offers, as OpenSSL describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    /// OpenSSL's name (`$ssl_cipher`).
    pub name: &'static str,
    /// The certificate it needs: ECDSA (`aECDSA`) or RSA (`aRSA`).
    pub ecdsa: bool,
    /// Its bulk cipher.
    cipher: Bulk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bulk {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20,
}

impl Suite {
    /// OpenSSL's strength bits (`@STRENGTH`).
    fn bits(&self) -> u32 {
        match self.cipher {
            Bulk::Aes128Gcm => 128,
            Bulk::Aes256Gcm | Bulk::Chacha20 => 256,
        }
    }

    /// Whether the suite is in an OpenSSL alias (or is the suite named).
    fn in_alias(&self, alias: &str) -> Option<bool> {
        let yes = match alias {
            // all these suites are in these
            "ALL" | "DEFAULT" | "HIGH" | "kECDHE" | "kEECDH" | "ECDHE" | "EECDH" | "ECDH"
            | "TLSv1.2" | "AEAD" | "FIPS" => true,
            // and in none of these
            "COMPLEMENTOFDEFAULT"
            | "COMPLEMENTOFALL"
            | "MEDIUM"
            | "LOW"
            | "EXPORT"
            | "EXPORT40"
            | "EXPORT56"
            | "eNULL"
            | "NULL"
            | "aNULL"
            | "kRSA"
            | "RSA"
            | "kDHE"
            | "kEDH"
            | "DHE"
            | "EDH"
            | "DH"
            | "kDHr"
            | "kDHd"
            | "kDH"
            | "ADH"
            | "AECDH"
            | "aDSS"
            | "DSS"
            | "aDH"
            | "aECDH"
            | "PSK"
            | "kPSK"
            | "kECDHEPSK"
            | "kDHEPSK"
            | "kRSAPSK"
            | "aPSK"
            | "SRP"
            | "kSRP"
            | "aSRP"
            | "kGOST"
            | "aGOST"
            | "GOST94"
            | "GOST89MAC"
            | "MD5"
            | "SHA1"
            | "SHA"
            | "SHA256"
            | "SHA384"
            | "SSLv3"
            | "TLSv1"
            | "TLSv1.0"
            | "3DES"
            | "DES"
            | "RC4"
            | "RC2"
            | "IDEA"
            | "SEED"
            | "CAMELLIA"
            | "CAMELLIA128"
            | "CAMELLIA256"
            | "ARIA"
            | "ARIA128"
            | "ARIA256"
            | "ARIAGCM"
            | "CCM"
            | "CCM8"
            | "AESCCM"
            | "AESCCM8"
            | "SUITEB128"
            | "SUITEB128ONLY"
            | "SUITEB192" => false,
            "aRSA" => !self.ecdsa,
            "aECDSA" | "ECDSA" => self.ecdsa,
            "AES" => self.cipher != Bulk::Chacha20,
            "AESGCM" => self.cipher != Bulk::Chacha20,
            "AES128" => self.cipher == Bulk::Aes128Gcm,
            "AES256" => self.cipher == Bulk::Aes256Gcm,
            "CHACHA20" => self.cipher == Bulk::Chacha20,
            name if name == self.name => true,
            _ => return None,
        };
        Some(yes)
    }
}

/// The TLS 1.2 suites rustls (with ring) has, in OpenSSL's order of
/// preference for `ALL` (`openssl ciphers -v ALL`).
pub const SUITES: [Suite; 6] = [
    Suite {
        name: "ECDHE-ECDSA-AES256-GCM-SHA384",
        ecdsa: true,
        cipher: Bulk::Aes256Gcm,
    },
    Suite {
        name: "ECDHE-RSA-AES256-GCM-SHA384",
        ecdsa: false,
        cipher: Bulk::Aes256Gcm,
    },
    Suite {
        name: "ECDHE-ECDSA-CHACHA20-POLY1305",
        ecdsa: true,
        cipher: Bulk::Chacha20,
    },
    Suite {
        name: "ECDHE-RSA-CHACHA20-POLY1305",
        ecdsa: false,
        cipher: Bulk::Chacha20,
    },
    Suite {
        name: "ECDHE-ECDSA-AES128-GCM-SHA256",
        ecdsa: true,
        cipher: Bulk::Aes128Gcm,
    },
    Suite {
        name: "ECDHE-RSA-AES128-GCM-SHA256",
        ecdsa: false,
        cipher: Bulk::Aes128Gcm,
    },
];

/// Why a cipher string cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CipherError {
    /// `@SOMETHING` OpenSSL does not know, or a rule with nothing in it
    /// where OpenSSL wants one (OpenSSL's "Ciphers Syntax error").
    Syntax(String),
}

/// The suites a cipher string selects, in its order (possibly none).
pub fn select(text: &str) -> Result<Vec<Suite>, CipherError> {
    // positions in SUITES: in the list (in order), and killed for good
    let mut list: Vec<usize> = Vec::new();
    let mut killed = [false; SUITES.len()];
    for rule in text.split([':', ',', ';', ' ']).filter(|r| !r.is_empty()) {
        if let Some(special) = rule.strip_prefix('@') {
            if special == "STRENGTH" {
                // a stable sort, strongest first
                list.sort_by_key(|i| std::cmp::Reverse(SUITES[*i].bits()));
            } else if !special.starts_with("SECLEVEL=") {
                return Err(CipherError::Syntax(rule.to_string()));
            }
            continue;
        }
        let (op, body) = match rule.as_bytes()[0] {
            b'!' => (Op::Kill, &rule[1..]),
            b'-' => (Op::Delete, &rule[1..]),
            b'+' => (Op::Order, &rule[1..]),
            _ => (Op::Add, rule),
        };
        if body.is_empty() {
            return Err(CipherError::Syntax(rule.to_string()));
        }
        let matches: Vec<usize> = (0..SUITES.len())
            .filter(|i| {
                body.split('+')
                    .all(|alias| SUITES[*i].in_alias(alias).unwrap_or(false))
            })
            .collect();
        match op {
            Op::Kill => {
                for i in matches {
                    killed[i] = true;
                    list.retain(|x| *x != i);
                }
            }
            Op::Delete => list.retain(|x| !matches.contains(x)),
            Op::Order => {
                let (moved, kept): (Vec<usize>, Vec<usize>) =
                    list.iter().partition(|x| matches.contains(x));
                list = kept;
                list.extend(moved);
            }
            Op::Add => {
                for i in matches {
                    if !killed[i] && !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }
    }
    Ok(list.into_iter().map(|i| SUITES[i]).collect())
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Kill,
    Delete,
    Order,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<&'static str> {
        select(text).unwrap().iter().map(|s| s.name).collect()
    }

    #[test]
    fn nginx_s_default_selects_all_six_in_openssl_s_order() {
        assert_eq!(names("HIGH:!aNULL:!MD5"), SUITES.map(|s| s.name).to_vec());
    }

    #[test]
    fn rules_add_remove_and_order_as_openssl_does() {
        assert_eq!(
            names("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256"),
            [
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES128-GCM-SHA256"
            ]
        );
        assert_eq!(
            names("EECDH+AESGCM:EDH+AESGCM"),
            [
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES128-GCM-SHA256"
            ]
        );
        assert_eq!(
            names("ALL:-aECDSA:+CHACHA20"),
            [
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-RSA-CHACHA20-POLY1305"
            ]
        );
        assert_eq!(
            names("AES128:CHACHA20:!aRSA:AES256:@STRENGTH"),
            [
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-AES128-GCM-SHA256"
            ]
        );
        // names of suites rustls does not have select nothing
        assert!(names("DHE-RSA-AES128-GCM-SHA256:AES128-SHA:3DES").is_empty());
        assert!(select("ALL:@FOO").is_err());
    }
}
