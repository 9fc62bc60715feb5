"""The Azure client side: ARM, append blobs, credentials."""
