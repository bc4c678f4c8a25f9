package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/uptrace/bun"

	"github.com/homeservices/homes/internal/app"
	"github.com/homeservices/homes/services/sender"
)

const deliveriesUsage = `usage: homes deliveries [--flat N] [--id N] [--limit N]
       homes deliveries redrive [--flat N] [--id N]

Without a command, print the deliveries by state and the failed ones.
redrive puts failed deliveries back to pending with fresh attempts (all of
them unless --flat or --id narrow it) and wakes the senders.
`

// deliveriesCmd is `homes deliveries`: the sender's queue as operators see
// it, and the re-drive of failed deliveries. It needs no running sender.
func deliveriesCmd(ctx context.Context, cfg app.Config, log *slog.Logger, args []string, out io.Writer) error {
	redrive := len(args) > 0 && args[0] == "redrive"
	if redrive {
		args = args[1:]
	}
	fs := flag.NewFlagSet("deliveries", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), deliveriesUsage)
		fs.PrintDefaults()
	}
	var f sender.DeliveryFilter
	fs.Int64Var(&f.ID, "id", 0, "only the delivery with this id")
	fs.Func("flat", "only the deliveries of the flat with this id", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		f.FlatID = int32(n)
		return err
	})
	limit := new(int)
	if !redrive {
		fs.IntVar(limit, "limit", 50, "most failed deliveries to print (0: all)")
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("deliveries: unexpected argument %q", fs.Arg(0))
	}

	db, err := app.OpenDB(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if redrive {
		n, err := sender.RedriveFailed(ctx, db, f)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "re-queued %d failed deliveries\n", n)
		return nil
	}
	return printDeliveries(ctx, db, f, *limit, out)
}

// printDeliveries writes the counts by state and the failed deliveries f
// selects.
func printDeliveries(ctx context.Context, db bun.IDB, f sender.DeliveryFilter, limit int, out io.Writer) error {
	st, err := sender.ReadStats(ctx, db, sender.DefaultConfig().ConsumerGroup)
	if err != nil {
		return err
	}
	failed, err := sender.ListFailed(ctx, db, f, limit)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pending %d, sending %d, sent %d, failed %d; oldest open %s; outbox backlog %d (oldest %s)\n",
		st.Pending, st.Sending, st.Sent, st.Failed, st.OldestOpenLag.Round(time.Second),
		st.OutboxBacklog, st.OutboxLag.Round(time.Second))
	if len(failed) == 0 {
		return nil
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tFLAT\tEMAIL\tATTEMPTS\tFAILED AT\tLAST ERROR")
	for _, d := range failed {
		fmt.Fprintf(w, "%d\t%d\t%s\t%d\t%s\t%s\n", d.ID, d.FlatID, d.Email, d.Attempts,
			d.FailedAt.UTC().Format(time.RFC3339), strings.Join(strings.Fields(d.LastError), " "))
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("print deliveries: %w", err)
	}
	if f == (sender.DeliveryFilter{}) && int64(len(failed)) < st.Failed {
		fmt.Fprintf(out, "... and %d more (--limit 0 prints all)\n", st.Failed-int64(len(failed)))
	}
	return nil
}
