package telemetry

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds the database reads one scrape makes.
const scrapeTimeout = 5 * time.Second

// DeliveryStats are the sender's figures, read from the database at each
// scrape (the sender's Stats method gives them).
type DeliveryStats struct {
	Pending, Sending, Sent, Failed int64         // deliveries by state
	OldestOpenLag                  time.Duration // age of the oldest open delivery
	OutboxBacklog                  int64         // events not yet handled
	OutboxLag                      time.Duration // age of the oldest of them
}

var (
	deliveriesDesc = prometheus.NewDesc(Namespace+"_deliveries",
		"Notification deliveries by state (pending, sending, sent, failed).", []string{"state"}, nil)
	deliveryLagDesc = prometheus.NewDesc(Namespace+"_delivery_oldest_open_age_seconds",
		"Time since the approval behind the oldest delivery still pending or sending.", nil, nil)
	outboxBacklogDesc = prometheus.NewDesc(Namespace+"_outbox_backlog",
		"Outbox events the sender has not handled yet.", nil, nil)
	outboxLagDesc = prometheus.NewDesc(Namespace+"_outbox_lag_seconds",
		"Age of the oldest outbox event the sender has not handled yet.", nil, nil)
	statsUpDesc = prometheus.NewDesc(Namespace+"_delivery_stats_up",
		"1 when the last read of the delivery figures succeeded.", nil, nil)
)

// deliveryCollector reads the figures at scrape time: they live in the
// database, shared by every sender process, so any one of them reports the
// truth (in Grafana, take max() over instances, not sum()).
type deliveryCollector struct {
	read func(context.Context) (DeliveryStats, error)
}

// NewDeliveryCollector exports the sender's figures, read by read at each
// scrape.
func NewDeliveryCollector(read func(context.Context) (DeliveryStats, error)) prometheus.Collector {
	return deliveryCollector{read: read}
}

func (c deliveryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{deliveriesDesc, deliveryLagDesc, outboxBacklogDesc, outboxLagDesc, statsUpDesc} {
		ch <- d
	}
}

func (c deliveryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st, err := c.read(ctx)
	if err != nil {
		slog.Warn("read delivery stats for metrics", "err", err)
		ch <- prometheus.MustNewConstMetric(statsUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(statsUpDesc, prometheus.GaugeValue, 1)
	for state, n := range map[string]int64{"pending": st.Pending, "sending": st.Sending, "sent": st.Sent, "failed": st.Failed} {
		ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(deliveryLagDesc, prometheus.GaugeValue, st.OldestOpenLag.Seconds())
	ch <- prometheus.MustNewConstMetric(outboxBacklogDesc, prometheus.GaugeValue, float64(st.OutboxBacklog))
	ch <- prometheus.MustNewConstMetric(outboxLagDesc, prometheus.GaugeValue, st.OutboxLag.Seconds())
}
