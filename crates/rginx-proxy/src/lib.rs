//! rginx-proxy
