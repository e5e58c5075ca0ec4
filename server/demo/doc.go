// Package demo makes a realistic demo city: the administrative tree of
// Xuchang (许昌市, code 4110) with its users, a day's feed of warning
// targets, and a month of its work, for `fieldsyncd demo`, for tests and
// for load programs.
//
// The city follows the four-level warning loop Xuchang's police describe:
// the city anti-fraud center receives the national platform's daily
// warnings and sends them down through counties and townships to village
// cadres, who reach the people at risk and report back. City builds six real
// counties and districts of Xuchang, three or four real townships and
// subdistricts in each, and four to eight generated villages and
// communities under each township, with unit codes shaped like China's
// statistical division codes (township 街道 001-099, 镇 100-199, 乡 200-299;
// village 社区 001-199, 村 201-399). The unit tree is the same for every seed,
// so codes can be written into tests and documentation.
//
// The seed chooses the people: one center user, one lead per county and per
// township, and one or two cadres per village (about a third of villages
// have two, so the feed's auto-assignment, which needs exactly one cadre,
// applies to the rest). Usernames are ASCII and follow the unit code
// (center, county-411002, lead-411002001, cadre-411002001001-1); each role
// shares one demo password (CenterPassword and the others).
//
// Warnings makes n warning targets for a day, with fraud types, risks and
// times of day in proportions like those China's police publish.
//
// History makes a month (or any number of days) of the city's work as
// events in time order: each day's feed, busier on weekdays, with a scam
// wave now and then, imported every quarter of an hour, and each
// warning's life after it: dispatches down the tree, assignments,
// cadres' attempts with every outcome (and losses for the people already
// defrauded), escalations and the county's answers a few hours later in
// office hours (so only the recent ones wait in its queue), leads'
// approvals and returns with reasons.
// Work is on time but for a few late attempts and people nobody reaches,
// so only a few warnings go overdue and none arrives overdue. Seed writes
// a history into a store through its real write path (the feed import,
// and pushes received at each event's time, store.Replay) with the
// store's clock (Clock) at each event, so the statistics, lists, indexes
// and histories are those the server keeps; `fieldsyncd demo` serves the
// result.
//
// Every person here, user or warning target, is synthetic: a random
// surname and given name, a random phone number. Nothing is taken from real
// people. The generators are deterministic for a given seed.
package demo
