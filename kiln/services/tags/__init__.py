"""Tags: CreateTags, DeleteTags, DescribeTags and the TagSpecifications of create calls."""
