"""Spiders: thin request/response glue; extraction and storage live in modules and pipelines."""
