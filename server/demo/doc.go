// Package demo makes a realistic demo city: the administrative tree of
// Xuchang (许昌市, code 4110) with its users, and a day's feed of warning
// targets, for `fieldsyncd demo`, for tests and for load programs.
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
// Every person here, user or warning target, is synthetic: a random
// surname and given name, a random phone number. Nothing is taken from real
// people. The generators are deterministic for a given seed.
package demo
