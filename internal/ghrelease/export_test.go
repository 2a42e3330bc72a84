package ghrelease

// WorkflowRepository exposes workflowRepository to the tests.
var WorkflowRepository = workflowRepository
