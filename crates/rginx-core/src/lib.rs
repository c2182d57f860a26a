//! rginx-core
