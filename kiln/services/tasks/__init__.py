"""Import and export tasks: ImportImage/ImportSnapshot, ExportImage, the task views; buckets and disk sources."""
