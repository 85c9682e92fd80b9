module hlocaltest

go 1.24
