"""One module per dataset: each reads its raw files into QA records and registers a `DatasetReader`
(sure_vqa.data.registry); every module here is loaded."""
