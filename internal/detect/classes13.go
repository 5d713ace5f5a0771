package detect

// The classes of nodes, rollouts and CronJobs. wip/detect adds them, with the others of issue 13,
// to the class list in types.go (with severities and config); this file goes at that merge.
const (
	// NodeNotReady is a node whose Ready condition is False or Unknown.
	NodeNotReady Class = "NodeNotReady"
	// NodePressure is a node with MemoryPressure, DiskPressure, PIDPressure or
	// NetworkUnavailable True.
	NodePressure Class = "NodePressure"
	// RolloutStuck is a Deployment, DaemonSet or StatefulSet whose rollout makes no progress.
	RolloutStuck Class = "RolloutStuck"
	// CronJobMissed is a CronJob that missed its schedules.
	CronJobMissed Class = "CronJobMissed"
)
