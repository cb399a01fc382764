//! The master's access tables: join tokens (`tokens-v1`, by the token's hash) and enrolled
//! followers (`followers-v1`, by name), as encoded records. What a record means is
//! `crate::master::access`'s business.

use super::{FOLLOWERS, Reader, StoreError, TOKENS, Writer};
use redb::ReadableTable;

impl Reader<'_> {
    /// The encoded record of a join token, by the token's hash.
    pub fn token(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tokens.get(*hash)?.map(|v| v.value().to_vec()))
    }

    /// The encoded record of a follower, by name.
    pub fn follower(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.followers.get(name)?.map(|v| v.value().to_vec()))
    }

    /// Every follower's encoded record, by name.
    pub fn followers(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.followers.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }
}

impl Writer<'_> {
    /// The encoded record of a join token, by the token's hash.
    pub fn token(&self, hash: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .txn
            .open_table(TOKENS)?
            .get(*hash)?
            .map(|v| v.value().to_vec()))
    }

    /// The hash of every join token.
    pub fn token_hashes(&self) -> Result<Vec<[u8; 32]>, StoreError> {
        let table = self.txn.open_table(TOKENS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            out.push(item?.0.value());
        }
        Ok(out)
    }

    pub fn put_token(&mut self, hash: &[u8; 32], record: &[u8]) -> Result<(), StoreError> {
        self.txn.open_table(TOKENS)?.insert(*hash, record)?;
        Ok(())
    }

    pub fn remove_token(&mut self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.txn.open_table(TOKENS)?.remove(*hash)?;
        Ok(())
    }

    /// The encoded record of a follower, by name.
    pub fn follower(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .txn
            .open_table(FOLLOWERS)?
            .get(name)?
            .map(|v| v.value().to_vec()))
    }

    /// Every follower's encoded record, by name.
    pub fn followers(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let table = self.txn.open_table(FOLLOWERS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    pub fn put_follower(&mut self, name: &str, record: &[u8]) -> Result<(), StoreError> {
        self.txn.open_table(FOLLOWERS)?.insert(name, record)?;
        Ok(())
    }
}
