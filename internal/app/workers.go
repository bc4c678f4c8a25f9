package app

import "github.com/homeservices/homes/services/home"

// homeOptions wires the home service's flat-change hook (the outbox).
func (a *App) homeOptions() []home.Option { return nil }

// buildWorkers adds the background workers of the chosen services.
func (a *App) buildWorkers() error { return nil }
